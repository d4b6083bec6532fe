# The shared part of bench/tenant_pitr.sh and bench/tenant_backup.sh, sourced
# by both after they set `bench` (their name, for messages), `root`, `rows`
# and `tenants`: a private Postgres with WAL archiving to a local pgBackRest
# repository, one table of ROWS rows over TENANTS tenants, `timevault run`
# started and ready (ready_s, store_bytes, peak_rss_mb), and the helpers
# both drivers use (die, now, since, api, pgbr, ...).
build="${TVBUILD_DIR:-$root/build}"  # as scripts/build
bin="$build/timevault"
[[ -x "$bin" ]] || "$root/scripts/build"
command -v pgbackrest >/dev/null || { echo "$bench: pgbackrest is missing (scripts/setup)" >&2; exit 1; }
source "$root/scripts/lib.sh"
source "$root/bench/lib.sh"
die() { echo "$bench: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg() { runuser -u postgres -- "$@"; }
victim="t$((tenants / 2))"

start_bench_servers
tv_pid=""; scratch=""
cleanup() {
  [[ -n "$tv_pid" ]] && { kill -TERM "$tv_pid" 2>/dev/null || true; wait "$tv_pid" 2>/dev/null || true; }
  [[ -n "$scratch" && -f "$scratch/postmaster.pid" ]] && as_pg "$pgbin/pg_ctl" -D "$scratch" -m immediate -w stop >/dev/null 2>&1
  [[ -n "$scratch" ]] && rm -rf "$scratch"
  stop_bench_servers
}
trap cleanup EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- pgBackRest: a repository, WAL archiving, a stanza -----------------------
pgbr="$work/pgbr"
mkdir -p "$pgbr/repo" "$pgbr/log" "$pgbr/lock" && chown -R postgres: "$pgbr"
cat >"$pgbr/pgbackrest.conf" <<CONF
[global]
repo1-path=$pgbr/repo
log-path=$pgbr/log
lock-path=$pgbr/lock
log-level-console=warn
start-fast=y
process-max=2
compress-type=lz4
repo1-retention-full=2
[bench]
pg1-path=$PGDATA_DIR
pg1-port=$PGPORT
pg1-socket-path=$PGDATA_DIR
pg1-user=postgres
CONF
chmod 644 "$pgbr/pgbackrest.conf"
pgbr() { as_pg pgbackrest --config="$pgbr/pgbackrest.conf" --stanza=bench "$@"; }
psql -qX -d postgres -c "ALTER SYSTEM SET archive_mode = on" \
  -c "ALTER SYSTEM SET archive_command = 'pgbackrest --config=$pgbr/pgbackrest.conf --stanza=bench archive-push %p'"
as_pg "$pgbin/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -m fast -w -t 60 restart >/dev/null
pgbr stanza-create

# --- the table ----------------------------------------------------------------
psql -qX <<SQL
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id text NOT NULL, customer text NOT NULL,
                     amount numeric(12,2) NOT NULL, status text NOT NULL, placed_at timestamptz NOT NULL);
CREATE INDEX ON orders (tenant_id);
CREATE PUBLICATION bench_pub FOR TABLE orders;
INSERT INTO orders
  SELECT g, 't' || (g % $tenants), 'customer ' || (g % 997), round(((g * 7.31) % 10000)::numeric, 2),
         (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
         timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'
  FROM generate_series(1, $rows) g;
ANALYZE orders;
SQL
load_lsn=$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")
table_bytes=$(psql -qXAt -c "SELECT pg_total_relation_size('orders')")
db_bytes=$(psql -qXAt -c "SELECT pg_database_size('bench')")

# --- timevault run --------------------------------------------------------------
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
api_port=$(free_port); url="http://127.0.0.1:$api_port"
head -c 32 /dev/urandom >"$work/master.key"; chmod 600 "$work/master.key"
cat >"$work/tv.toml" <<TOML
log_level = "warn"
[tenant]
column = "tenant_id"
[postgres]
conninfo = "host=$PGHOST port=$PGPORT user=$PGUSER dbname=bench"
slot = "tv"
publication = "bench_pub"
snapshot_mode = "initial"
status_interval_ms = 100
[kafka]
bootstrap = "$KAFKA_BOOTSTRAP"
topic_prefix = "tp"
heartbeat_interval_ms = 500
[store]
path = "$work/store"
key_file = "$work/master.key"
$(bench_api_toml "$api_port" "$token")
TOML
# api METHOD PATH [BODY] -> the body on stdout; fails on a status >= 300.
api() {
  local code args=(-sS -o "$work/api.out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data "$3")
  code=$(curl "${args[@]}" "$url$2") || return 1
  [[ "$code" =~ ^2 ]] || { echo "$bench: $1 $2 -> $code $(cat "$work/api.out")" >&2; return 1; }
  cat "$work/api.out"
}
# jget FIELD.PATH: reads JSON on stdin, prints the field ("" when null/absent).
jget() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1"; }
lsn_ge() { [[ "$(psql -qXAt -c "SELECT pg_lsn '$1' >= pg_lsn '$2'")" == t ]]; }
# Blocks until the API's recoverable point reaches LSN $1.
wait_recoverable() {
  local deadline=$((SECONDS + 1200)) p
  while :; do
    kill -0 "$tv_pid" 2>/dev/null || die "timevault run died: $(tail -n5 "$work/tv.log")"
    p=$(api GET /v1/session 2>/dev/null | jget recoverable_point.lsn 2>/dev/null || true)
    [[ -n "$p" ]] && lsn_ge "$p" "$1" && return 0
    ((SECONDS < deadline)) || die "the recoverable point did not reach $1 in 1200 s (at '${p}')"
    sleep 0.1
  done
}

t_run=$(now)
"$bin" --config "$work/tv.toml" run >"$work/tv.log" 2>&1 &
tv_pid=$!
wait_recoverable "$load_lsn"
ready_s=$(since "$t_run")
store_bytes=$(du -sb "$work/store" | cut -f1)
peak_rss_mb=$(awk '/^VmHWM/ {printf "%d", $2 / 1024}' "/proc/$tv_pid/status")
"$bin" --config "$work/tv.toml" store stats --scan 2>&1 | sed 's/^/store stats: /' || true
printf 'load: %d rows over %d tenants; table %d bytes (with indexes), database %d bytes; ready in %.1f s; store %d bytes (%.2f x table, %.2f x database)\n' \
  "$rows" "$tenants" "$table_bytes" "$db_bytes" "$ready_s" "$store_bytes" \
  "$(echo "$store_bytes / $table_bytes" | bc -l)" "$(echo "$store_bytes / $db_bytes" | bc -l)"
