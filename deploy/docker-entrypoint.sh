#!/bin/sh
# Entry point of the messenger image: one image, three roles.
#   docker run IMAGE             -> api (the default CMD)
#   docker run IMAGE consumer    -> search job consumer
#   docker run IMAGE migrate     -> applies the database migrations and exits
# Anything else runs as given (docker run IMAGE npm run migrate, docker run -it IMAGE sh).
# `exec` hands PID 1 (or the child of `--init`) to node, so SIGTERM reaches it directly.
#
# V8 heap settings of the long-running roles (README, "Memory"): a young generation of 2 × 8 MB
# instead of 2 × 16 MB, and an old generation that grows by 25% over what survives a full collection
# instead of up to 4× (no ceiling: the heap still grows with what is live, e.g. open streams). A
# migration runs for seconds and keeps V8's defaults. The Makefile, the npm scripts and the bench
# start the roles with these same flags.
set -eu
case "${1:-api}" in
  api | consumer) exec node --max-semi-space-size=8 --heap-growing-percent=25 /app/dist/src/main.js "${1:-api}" ;;
  migrate) exec node /app/dist/src/main.js migrate ;;
esac
exec "$@"
