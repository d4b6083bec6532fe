#!/usr/bin/env bash
# Backups of every tenant and one tenant back from its backup: timevault's API
# against pgBackRest on the same data in the same run (issue #20).
#
# Same data and `timevault run` as bench/tenant_pitr.sh (one table of ROWS
# rows over TENANTS tenants; ready_s = `timevault run` start until the API's
# recoverable point passes the LSN after the load). Then, timed:
#   backup:  (a) POST /v1/backups {"tenant": "*", "type": "full"} and polling
#            GET /v1/jobs/{id} (every 50 ms) until it succeeded; (b) the
#            anchor, `pgbackrest --type=full backup` of the whole cluster
#            (lz4, process-max=2, start-fast).
#   restore: the victim tenant t<N/2> is fingerprinted (count + md5 of its
#            COPY text in key order; nothing changed since both backups) and
#            deleted (the accident); (a) POST /v1/restores {backup_id of the
#            "*" backup, tenant, confirm} + polling until it succeeded; the
#            accident again, then (b) what an operator does with pgBackRest:
#            `restore --type=immediate --target-action=promote` (the
#            backup's consistent point) into a scratch data directory,
#            start it on another port, wait for the promotion, COPY the
#            tenant's rows out of it into the live table in one transaction
#            (DELETE + COPY FROM STDIN). Each must give the fingerprint, and
#            the other tenants' rows must be unchanged.
# TVBENCH_PERF=FILE records `perf record -g` of `timevault run` during (a)'s
# backup into FILE. Last line:
#   backup_s=<N> pgbackrest_backup_s=<M> backup_ratio=<M/N> restore_s=<R> pgbackrest_restore_s=<P> restore_ratio=<P/R> ready_s=<S>
#
#   bench/tenant_backup.sh [ROWS] [TENANTS]     (defaults 1000000, 100)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-1000000}; tenants=${2:-100}
build="${TVBUILD_DIR:-$root/build}"  # as scripts/build
bin="$build/timevault"
[[ -x "$bin" ]] || "$root/scripts/build"
command -v pgbackrest >/dev/null || { echo "tenant_backup: pgbackrest is missing (scripts/setup)" >&2; exit 1; }
source "$root/scripts/lib.sh"
source "$root/bench/lib.sh"
die() { echo "tenant_backup: $*" >&2; exit 1; }
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
[api]
listen = "127.0.0.1:$api_port"
[[api.tokens]]
name = "bench"
sha256 = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
role = "admin"
tenants = ["*"]
TOML
# api METHOD PATH [BODY] -> the body on stdout; fails on a status >= 300.
api() {
  local code args=(-sS -o "$work/api.out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data "$3")
  code=$(curl "${args[@]}" "$url$2") || return 1
  [[ "$code" =~ ^2 ]] || { echo "tenant_backup: $1 $2 -> $code $(cat "$work/api.out")" >&2; return 1; }
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
printf 'load: %d rows over %d tenants; table %d bytes (with indexes), database %d bytes; ready in %.1f s; store %d bytes (%.2f x table, %.2f x database)\n' \
  "$rows" "$tenants" "$table_bytes" "$db_bytes" "$ready_s" "$store_bytes" \
  "$(echo "$store_bytes / $table_bytes" | bc -l)" "$(echo "$store_bytes / $db_bytes" | bc -l)"


# Runs API job: POST $1 $2, polls the job until it succeeded; sets job_body.
field() { local re="\"$1\": ?\"([^\"]*)\""; [[ "$2" =~ $re ]] && printf -v "$3" %s "${BASH_REMATCH[1]}"; }
run_job() {
  local body job state
  body=$(api POST "$1" "$2")
  field job_id "$body" job || die "no job id from POST $1: $body"
  while :; do
    body=$(api GET "/v1/jobs/$job")
    field state "$body" state || die "no job state in $body"
    [[ "$state" == succeeded ]] && break
    [[ "$state" == failed ]] && die "the job of POST $1 failed: $body"
    sleep 0.05
  done
  job_body=$body
}

# --- backups ------------------------------------------------------------------------
perf_pid=""
if [[ -n "${TVBENCH_PERF:-}" ]]; then
  perf record -g -o "$TVBENCH_PERF" -p "$tv_pid" >/dev/null 2>&1 &
  perf_pid=$!
fi
ta=$(now)
run_job /v1/backups '{"tenant":"*","type":"full"}'
backup_s=$(since "$ta")
[[ -n "$perf_pid" ]] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
backup_id=$(grep -oE '"b-[0-9]{8}T[0-9]{6}Z-[0-9a-f]+"' <<<"$job_body" | head -n1 | tr -d '"') || true
[[ -n "$backup_id" ]] || die "no backup id in $job_body"
backup_dir="$work/store-backups/$backup_id"
printf '(a) timevault backup of "*": %.2f s, %d bytes (%s); job %s\n' "$backup_s" "$(du -sb "$backup_dir" | cut -f1)" \
  "$backup_id" "$(grep -o '"started_at":"[^"]*","finished_at":"[^"]*"' <<<"$job_body" || true)"
tb=$(now); pgbr --type=full backup
pgbr_backup_s=$(since "$tb")
printf '(b) pgbackrest full backup: %.2f s, repository %d bytes\n' "$pgbr_backup_s" "$(du -sb "$pgbr/repo" | cut -f1)"

# --- the accident -------------------------------------------------------------------
fingerprint() { # count:md5 of the victim's rows in the live table
  echo "$(psql -qXAt -c "SELECT count(*) FROM orders WHERE tenant_id = '$victim'"):$(
    psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id = '$victim' ORDER BY id) TO STDOUT" | md5sum | cut -c1-32)"
}
want=$(fingerprint)
others=$(psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id <> '$victim' ORDER BY id) TO STDOUT" | md5sum)
psql -qX -c "DELETE FROM orders WHERE tenant_id = '$victim'"
wait_recoverable "$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")"
echo "tenant $victim: ${want%%:*} rows (md5 ${want#*:}); deleted"

# --- (a) timevault restore through the API --------------------------------------------
ta=$(now)
run_job /v1/restores "{\"backup_id\":\"$backup_id\",\"tenant\":\"$victim\",\"confirm\":true}"
restore_s=$(since "$ta")
got=$(fingerprint)
printf '(a) timevault restore of %s from %s: %.2f s; job %s\n' "$victim" "$backup_id" "$restore_s" \
  "$(grep -o '"started_at":"[^"]*","finished_at":"[^"]*"' <<<"$job_body" || true)"
[[ "$got" == "$want" ]] || die "timevault restored $got, want $want"

psql -qX -c "DELETE FROM orders WHERE tenant_id = '$victim'"
kill -TERM "$tv_pid"; wait "$tv_pid" || true; tv_pid=""

# --- (b) pgBackRest ---------------------------------------------------------------------
scratch="$work/scratch"
mkdir -p "$scratch" && chown postgres: "$scratch" && chmod 700 "$scratch"
scratch_port=$(free_port)
tb=$(now)
pgbr --pg1-path="$scratch" --type=immediate --target-action=promote restore
pgbr_restore_files_s=$(since "$tb")
as_pg "$pgbin/pg_ctl" -D "$scratch" -l "$pgbr/scratch.log" -w -t 600 start \
  -o "-p $scratch_port -c unix_socket_directories=$scratch -c archive_mode=off -c listen_addresses=127.0.0.1" >/dev/null
until [[ "$(psql -qXAt -p "$scratch_port" -c "SELECT pg_is_in_recovery()")" == f ]]; do sleep 0.05; done
started_s=$(since "$tb")
psql -qXAt -p "$scratch_port" -c "COPY (SELECT * FROM orders WHERE tenant_id = '$victim') TO STDOUT" |
  psql -qX -1 -c "DELETE FROM orders WHERE tenant_id = '$victim'" -c "COPY orders FROM STDIN"
pgbr_restore_s=$(since "$tb")
got=$(fingerprint)
printf '(b) pgbackrest: restore %.2f s, start + recovery %.2f s, copy + swap %.2f s, total %.2f s\n' \
  "$pgbr_restore_files_s" "$(echo "$started_s - $pgbr_restore_files_s" | bc -l)" \
  "$(echo "$pgbr_restore_s - $started_s" | bc -l)" "$pgbr_restore_s"
[[ "$got" == "$want" ]] || die "pgBackRest restored $got, want $want"
[[ "$(psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id <> '$victim' ORDER BY id) TO STDOUT" | md5sum)" == "$others" ]] ||
  die "the other tenants' rows changed"
echo "both restored ${want%%:*} rows with md5 ${want#*:}; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'backup_s=%.2f pgbackrest_backup_s=%.2f backup_ratio=%.2f restore_s=%.2f pgbackrest_restore_s=%.2f restore_ratio=%.2f ready_s=%.1f\n' \
  "$backup_s" "$pgbr_backup_s" "$(echo "$pgbr_backup_s / $backup_s" | bc -l)" \
  "$restore_s" "$pgbr_restore_s" "$(echo "$pgbr_restore_s / $restore_s" | bc -l)" "$ready_s"
