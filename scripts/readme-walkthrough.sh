#!/usr/bin/env bash
# Runs the README's curl walk-through: the ```sh blocks between the walkthrough:start and
# walkthrough:end markers, in order, in one shell that stops at the first failing command.
#   bash scripts/readme-walkthrough.sh                 # against make dev, http://localhost:8080
#   API=http://127.0.0.1:3000 bash scripts/readme-walkthrough.sh
#   bash scripts/readme-walkthrough.sh --print         # only print the extracted script
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "readme-walkthrough: $tool is needed (see README.md)" >&2; exit 1; }
done

script=$(awk '
  /<!-- walkthrough:start/ { inside = 1; next }
  /<!-- walkthrough:end/ { inside = 0; next }
  inside && /^```sh$/ { code = 1; blocks++; print "# --- block " blocks; next }
  inside && /^```$/ { code = 0; next }
  code { print }
' README.md)
if ! grep -q '^# --- block ' <<<"$script"; then
  echo "readme-walkthrough: no sh blocks between the walkthrough markers in README.md" >&2
  exit 1
fi

if [ "${1:-}" = --print ]; then
  printf '%s\n' "$script"
  exit 0
fi

echo "readme-walkthrough: $(grep -c '^# --- block ' <<<"$script") blocks against ${API:-http://localhost:8080}" >&2
exec bash -euo pipefail -c "$script"
