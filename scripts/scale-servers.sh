#!/usr/bin/env bash
# Throwaway servers for `make test-scale`, on loopback ports, in a temporary directory; the machine's
# own PostgreSQL and Redis are never touched:
#   - a Redis Cluster of three masters (redis-server --cluster-enabled yes, redis-cli --cluster create);
#   - a PostgreSQL primary and a streaming replica (initdb + pg_basebackup -R, the installed binaries).
# Usage: scripts/scale-servers.sh -- command [args...]
#   Starts them, runs the command with SCALE_REDIS_URL, SCALE_DATABASE_URL, SCALE_REPLICA_URL and
#   SCALE_REPLICA_SOCKET_DIR (for psql to the replica) exported, then tears everything down, whatever
#   the command's outcome (trap EXIT). The command's exit status is the script's.
set -euo pipefail

REDIS_PORTS=(${SCALE_REDIS_PORTS:-7000 7001 7002})
PRIMARY_PORT=${SCALE_PRIMARY_PORT:-5442}
REPLICA_PORT=${SCALE_REPLICA_PORT:-5443}
PGBIN=${SCALE_PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 -- command [args...]" >&2; exit 2; }
[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL binaries (set SCALE_PGBIN)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 2; }

for port in "${REDIS_PORTS[@]}" "$PRIMARY_PORT" "$REPLICA_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use: set SCALE_REDIS_PORTS / SCALE_PRIMARY_PORT / SCALE_REPLICA_PORT" >&2
    exit 2
  fi
done

dir=$(mktemp -d /tmp/messenger-scale.XXXXXX)
chmod 755 "$dir"
# initdb refuses root: the servers run as `postgres` then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"

teardown() {
  local status=$?
  for port in "${REDIS_PORTS[@]}"; do
    [ -f "$dir/redis-$port/pid" ] && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  for node in replica primary; do
    [ -f "$dir/$node/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/$node" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

echo "scale servers in $dir"

# Redis Cluster: three masters, no replicas, nothing saved to disk.
for port in "${REDIS_PORTS[@]}"; do
  mkdir -p "$dir/redis-$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$dir/redis-$port/nodes.conf" --dir "$dir/redis-$port" \
    --save "" --appendonly no --daemonize yes --pidfile "$dir/redis-$port/pid" \
    --logfile "$dir/redis-$port/log"
done
for port in "${REDIS_PORTS[@]}"; do
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
nodes=()
for port in "${REDIS_PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log"
for _ in $(seq 100); do
  ok=1
  for port in "${REDIS_PORTS[@]}"; do
    redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' || ok=0
  done
  [ "$ok" = 1 ] && break
  sleep 0.1
done
[ "$ok" = 1 ] || { echo "the Redis Cluster did not reach cluster_state:ok" >&2; exit 1; }

# PostgreSQL: a primary, and a streaming replica made from its base backup (-R writes the
# standby.signal and primary_conninfo). fsync off: throwaway data, a test run, not a benchmark.
# synchronous_commit stays on, as in production: a commit's WAL is written when it is acknowledged.
as_pg "$PGBIN/initdb" -D "$dir/primary" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log"
cat >>"$dir/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PRIMARY_PORT
unix_socket_directories = '$dir'
wal_level = replica
max_wal_senders = 4
fsync = off
full_page_writes = off
shared_buffers = 32MB
EOF
as_pg "$PGBIN/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w start >/dev/null
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$dir/replica" -R -X stream
cat >>"$dir/replica/postgresql.conf" <<EOF
port = $REPLICA_PORT
hot_standby = on
EOF
as_pg "$PGBIN/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w start >/dev/null
as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -qc 'CREATE DATABASE messenger_scale'
for _ in $(seq 100); do
  as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d messenger_scale -qAtc 'select 1' \
    >/dev/null 2>&1 && break
  sleep 0.1
done

export SCALE_REDIS_URL="redis+cluster://$(IFS=,; echo "${nodes[*]}")"
export SCALE_DATABASE_URL="postgres://postgres@127.0.0.1:$PRIMARY_PORT/messenger_scale"
export SCALE_REPLICA_URL="postgres://postgres@127.0.0.1:$REPLICA_PORT/messenger_scale"
export SCALE_PGBIN="$PGBIN" SCALE_DIR="$dir"
echo "redis: $SCALE_REDIS_URL  primary: $SCALE_DATABASE_URL  replica: $SCALE_REPLICA_URL"
"$@"
