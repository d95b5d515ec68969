#!/usr/bin/env bash
# Reads per second of the history page statement on a primary and on its streaming replica (pgbench,
# 8 clients, random chats and depths), for SCALING.md. Run inside scripts/scale-servers.sh:
#   scripts/scale-servers.sh -- bash bench/replica-reads.sh
set -euo pipefail
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_primary() { run "$SCALE_PGBIN/psql" -q -v ON_ERROR_STOP=1 "$SCALE_DATABASE_URL" "$@"; }
psql_primary <<'SQL'
CREATE TABLE chats (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int UNIQUE);
CREATE TABLE members (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), chat_id uuid NOT NULL REFERENCES chats, name text NOT NULL);
CREATE TABLE messages (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), seq bigint GENERATED ALWAYS AS IDENTITY,
  chat_id uuid NOT NULL REFERENCES chats, member_id uuid NOT NULL REFERENCES members, text text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO chats (n) SELECT g FROM generate_series(1, 200) g;
INSERT INTO members (chat_id, name) SELECT id, 'member ' || n FROM chats;
INSERT INTO messages (chat_id, member_id, text)
  SELECT c.id, m.id, 'message number ' || g || ' with some ordinary words in it'
  FROM generate_series(1, 2000) g, chats c JOIN members m ON m.chat_id = c.id;
CREATE UNIQUE INDEX ON messages (chat_id, seq);
VACUUM ANALYZE;
SQL
script=$(mktemp); chmod 644 "$script"
cat >"$script" <<'SQL'
\set n random(1, 200)
\set depth random(0, 1950)
SELECT m.seq, m.id, m.member_id, mb.name, m.text, m.created_at
  FROM messages m JOIN members mb ON mb.id = m.member_id
  WHERE m.chat_id = (SELECT id FROM chats WHERE n = :n)
    AND m.seq > (SELECT min(seq) FROM messages WHERE chat_id = (SELECT id FROM chats WHERE n = :n)) + :depth
  ORDER BY m.seq LIMIT 50;
SQL
sleep 2 # the replica replays the seed
for target in "primary $SCALE_DATABASE_URL" "replica $SCALE_REPLICA_URL"; do
  set -- $target
  tps=$(run "$SCALE_PGBIN/pgbench" -n -c 8 -j 2 -T "${SECONDS_PER_RUN:-10}" -f "$script" "$2" 2>/dev/null | grep -Eo 'tps = [0-9.]+' | head -1)
  echo "$1: history page statement (50 rows), 8 clients: $tps"
done
rm -f "$script"
