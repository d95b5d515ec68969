#!/bin/sh
# Entry point of the messenger image: one image, three roles.
#   docker run IMAGE             -> api (the default CMD)
#   docker run IMAGE consumer    -> search job consumer
#   docker run IMAGE migrate     -> applies the database migrations and exits
# Anything else runs as given (docker run IMAGE npm run migrate, docker run -it IMAGE sh).
# `exec` hands PID 1 (or the child of `--init`) to node, so SIGTERM reaches it directly.
set -eu
case "${1:-api}" in
  api | consumer | migrate) exec node /app/dist/src/main.js "${1:-api}" ;;
esac
exec "$@"
