#!/usr/bin/env bash
# Fuzzes the operators' HTTP API with schemathesis against api/openapi.yaml.
#
#   tests/api/fuzz.sh ENVDIR TIMEVAULT [--out DIR] [--examples N] [--seed S]
#
# ENVDIR holds pg.env and kafka.env (the ctest fixture `testenv` writes them).
# A real `timevault run` (capture + store + serve) runs against its own
# database, topics and consumer group, with two tenants' rows in a few tables,
# and schemathesis (scripts/setup installs it under .cache/schemathesis) sends
# generated requests with an admin token. The run fails on any response >= 500
# and on any response the spec does not describe: status code, content type,
# headers or body schema. The server must still be alive afterwards and stop
# cleanly on SIGTERM. Outputs (server log, schemathesis reports) stay in DIR.
#
# TV_FUZZ_EXAMPLES and TV_FUZZ_SEED override the defaults (a fixed seed makes a
# failure reproducible, another seed explores other inputs); TV_FUZZ_CHECKS
# replaces the list of checks (e.g. "all" to explore, see docs/api.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "api fuzz: $*" >&2; exit 1; }
(($# >= 2)) || die "usage: fuzz.sh ENVDIR TIMEVAULT [--out DIR] [--examples N] [--seed S]"
envdir=$1 tv=$2
shift 2
out=${TMPDIR:-/tmp}/timevault-api-fuzz
examples=${TV_FUZZ_EXAMPLES:-50}
seed=${TV_FUZZ_SEED:-20261127}
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --examples) examples=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
st="$root/.cache/schemathesis/bin/schemathesis"
[[ -x "$st" ]] || die "schemathesis is not installed at $st: run scripts/setup"
[[ -x "$tv" ]] || die "no timevault binary at $tv"
[[ -f "$envdir/pg.env" && -f "$envdir/kafka.env" ]] || die "no test environment in $envdir (tests/testenv start DIR)"
# shellcheck disable=SC1091
source "$envdir/pg.env"
# shellcheck disable=SC1091
source "$envdir/kafka.env"
export PGHOST PGPORT PGUSER

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
name="tvfuzz_$$"
db=$name
token="fuzz-admin-$RANDOM$RANDOM"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
server_pid=""

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid" 2>/dev/null || true; fi
  psql_admin -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$name'" \
    >/dev/null 2>&1 || true
  psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A small schema: two tenants, a parent and a child table, a few column types.
psql_admin -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
CREATE TABLE items (id int PRIMARY KEY, tenant_id text NOT NULL, name text, price numeric(10,2),
                    tags jsonb, updated_at timestamptz DEFAULT now());
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id text NOT NULL, item_id int REFERENCES items(id),
                     quantity int NOT NULL, note text);
INSERT INTO items SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, 'item ' || g, g * 1.25,
                         jsonb_build_object('n', g) FROM generate_series(1, 20) g;
INSERT INTO orders SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, g, g % 5 + 1, NULL
                   FROM generate_series(1, 20) g;
SQL

head -c 32 /dev/urandom >"$out/key"
chmod 600 "$out/key"
cat >"$out/timevault.toml" <<TOML
[postgres]
conninfo = "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db"
slot = "$name"
publication = "$name"
status_interval_ms = 500
[kafka]
bootstrap = "$KAFKA_BOOTSTRAP"
topic_prefix = "$name"
heartbeat_interval_ms = 500
topic_partitions = 1
consumer_group = "$name-store"
[store]
path = "$out/store"
key_file = "$out/key"
[api]
listen = "127.0.0.1:$port"
[[api.tokens]]
name = "fuzz-admin"
sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
role = "admin"
tenants = ["*"]
TOML

"$tv" --config "$out/timevault.toml" run >"$out/server.log" 2>&1 &
server_pid=$!

# Ready when the API serves acme's 20 rows (10 items, 10 orders) from the store.
rows=0
for _ in $(seq 1 600); do
  kill -0 "$server_pid" 2>/dev/null || { cat "$out/server.log" >&2; die "timevault run exited early"; }
  rows=$(curl -sf -H "Authorization: Bearer $token" "$base/v1/tenants/acme/state" | wc -l || true)
  ((rows == 20)) && break
  sleep 0.2
done
((rows == 20)) || { tail -50 "$out/server.log" >&2; die "the API did not serve acme's 20 rows (got $rows)"; }
echo "api fuzz: timevault run serves on $base; schemathesis, $examples examples per operation, seed $seed"

checks=${TV_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance}
status=0
# From $out: schemathesis keeps its example database in ./.schemathesis.
cd "$out"
"$st" --no-color run "$root/api/openapi.yaml" --url "$base" \
  -H "Authorization: Bearer $token" \
  --checks "$checks" \
  --max-examples "$examples" --seed "$seed" --workers 1 \
  --request-timeout 60 \
  --report junit,har --report-dir "$out/report" || status=$?

kill -0 "$server_pid" 2>/dev/null || { tail -50 "$out/server.log" >&2; die "the server died during the run"; }
kill -TERM "$server_pid"
code=0
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then die "the server did not stop within 30 s of SIGTERM"; fi
wait "$server_pid" || code=$?
server_pid=""
((code == 0)) || { tail -30 "$out/server.log" >&2; die "the server exited with $code after SIGTERM"; }
if grep -n "exception" "$out/server.log" >&2; then die "the server logged exceptions (above)"; fi
((status == 0)) || die "schemathesis found failures (exit $status); reports in $out/report, server log $out/server.log"
echo "api fuzz: passed; reports in $out/report"
