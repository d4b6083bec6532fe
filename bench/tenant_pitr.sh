#!/usr/bin/env bash
# One tenant back to T after an accident: timevault's API against what an
# operator does today with pgBackRest (issue #20).
#
# A private Postgres with WAL archiving to a local pgBackRest repository gets
# one table of ROWS rows over TENANTS tenants (tenant_id = 't0' .. 't<N-1>').
# `timevault run` (capture + store + API, snapshot_mode initial) captures it:
# ready_s is the time from its start until the API's recoverable point passes
# the LSN after the load (the first possible PITR covering the loaded data).
# Then a full pgBackRest backup, life goes on (small transactions over every
# tenant), T is noted (the server's now()), the tenant's rows at T are
# fingerprinted (count + md5 of their COPY text in key order), and the tenant
# is deleted (the accident). Timed:
#   (a) timevault: POST /v1/pitr/preview {tenant, target_time T} + POST
#       /v1/pitr {plan_id, confirm} + polling GET /v1/jobs/{id} (every 50 ms)
#       until the job succeeded;
#   (b) pgBackRest 2.45: `restore --type=time --target=T
#       --target-action=promote` into a scratch data directory, start that
#       cluster on another port, wait for the promotion, then COPY the
#       tenant's rows out of it straight into the live table in one
#       transaction (DELETE the tenant's rows + COPY FROM STDIN).
# The tenant is deleted again between (a) and (b) (after the store has seen
# (a)'s rows). Each restore must give the fingerprint taken at T.
# store_bytes_per_db_byte = du of the store directory at ready time /
# pg_total_relation_size of the table (table + indexes + TOAST); the database
# size is printed too, and `timevault store stats` (per column family) beside
# the running store. peak_rss_mb = the peak resident set (VmHWM) of
# `timevault run` at ready time, i.e. while it ingested the snapshot. Last line:
#   timevault_s=<N> pgbackrest_s=<M> ratio=<M/N> store_bytes_per_db_byte=<R> ready_s=<S> peak_rss_mb=<P>
#
#   bench/tenant_pitr.sh [ROWS] [TENANTS]     (defaults 1000000, 100)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-1000000}; tenants=${2:-100}
bench=tenant_pitr
source "$root/bench/tenant_setup.sh"

# --- the operator's full backup, life goes on, T, the accident ------------------------
tb=$(now); pgbr --type=full backup
printf 'pgbackrest full backup: %.1f s, repository %d bytes\n' "$(since "$tb")" "$(du -sb "$pgbr/repo" | cut -f1)"
for i in $(seq 1 50); do
  psql -qX -c "UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id IN (SELECT id FROM orders WHERE id % 997 = $i LIMIT 20)" \
    -c "INSERT INTO orders SELECT $rows + $i, 't' || ($i % $tenants), 'late customer', 1.00, 'new', now()"
done
psql -qX -c "UPDATE orders SET status = 'shipped' WHERE tenant_id = '$victim' AND id % 50 = 0"
sleep 1
# T to the millisecond (pgBackRest's backup-set selection takes no finer); the
# same instant in ISO 8601 for the API and in pgBackRest's format.
T=$(psql -qXAt -c "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
T_pgbr="${T/T/ }"; T_pgbr="${T_pgbr%Z}+00"
sleep 1
fingerprint() { # count:md5 of the victim's rows in the live table
  echo "$(psql -qXAt -c "SELECT count(*) FROM orders WHERE tenant_id = '$victim'"):$(
    psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id = '$victim' ORDER BY id) TO STDOUT" | md5sum | cut -c1-32)"
}
want=$(fingerprint)
others=$(psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id <> '$victim' ORDER BY id) TO STDOUT" | md5sum)
psql -qX -c "DELETE FROM orders WHERE tenant_id = '$victim'"
wait_recoverable "$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")"
echo "T = $T; tenant $victim at T: ${want%%:*} rows (md5 ${want#*:}); deleted"

# --- (a) timevault through the API ----------------------------------------------
# The hot path parses with bash regexes, no process per field: under load a
# Python start per poll added seconds to what is timed.
field() { local re="\"$1\": ?\"([^\"]*)\""; [[ "$2" =~ $re ]] && printf -v "$3" %s "${BASH_REMATCH[1]}"; }
# TVBENCH_PITR_RUNS=N (default 1): N timed PITRs, the tenant deleted again
# before each; timevault_s is their median. TVBENCH_PERF=FILE: `perf record
# -g` of `timevault run` during the timed PITRs into FILE.
pitr_runs=${TVBENCH_PITR_RUNS:-1}
perf_pid=""
if [[ -n "${TVBENCH_PERF:-}" ]]; then
  perf record -g -F 499 -p "$tv_pid" -o "$TVBENCH_PERF" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 1
fi
pitr_times=()
for run in $(seq 1 "$pitr_runs"); do
  if ((run > 1)); then
    psql -qX -c "DELETE FROM orders WHERE tenant_id = '$victim'"
    wait_recoverable "$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")"
  fi
  plan=""; job=""; state=""
  ta=$(now)
  body=$(api POST /v1/pitr/preview "{\"tenant\":\"$victim\",\"target_time\":\"$T\"}")
  preview_s=$(since "$ta")
  field plan_id "$body" plan || die "no plan_id in $body"
  printf '%s' "$body" >"$work/plan.json"
  body=$(api POST /v1/pitr "{\"plan_id\":\"$plan\",\"confirm\":true}")
  field job_id "$body" job || die "no job id from POST /v1/pitr: $body"
  posted=$(date -u +%H:%M:%S.%N)
  while :; do
    body=$(api GET "/v1/jobs/$job")
    field state "$body" state || die "no job state in $body"
    [[ "$state" == succeeded ]] && break
    [[ "$state" == failed ]] && die "the PITR job failed: $body"
    sleep 0.05
  done
  timevault_s=$(since "$ta")
  printf '%s' "$body" >"$work/job.json"
  got=$(fingerprint)
  printf '(a) timevault: preview %.2f s, execute job %.2f s, total %.2f s; plan %s\n' "$preview_s" \
    "$(echo "$timevault_s - $preview_s" | bc -l)" "$timevault_s" "$(jget operations <"$work/plan.json")"
  [[ "$got" == "$want" ]] || die "timevault restored $got, want $want"
  echo "    preview sent $(date -u -d "@$ta" +%H:%M:%S.%N), POST /v1/pitr answered $posted; job created $(jget created_at <"$work/job.json"), started $(jget started_at <"$work/job.json"), finished $(jget finished_at <"$work/job.json"); success seen $(date -u -d "@$(echo "$ta + $timevault_s" | bc -l)" +%H:%M:%S.%N)"

  pitr_times+=("$timevault_s")
done
[[ -n "$perf_pid" ]] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
timevault_s=$(printf '%s\n' "${pitr_times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "timevault runs: ${pitr_times[*]} (median $timevault_s)"

# The accident again, for pgBackRest; its WAL reaches the archive before (b).
psql -qX -c "DELETE FROM orders WHERE tenant_id = '$victim'"
wait_recoverable "$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")"
kill -TERM "$tv_pid"; wait "$tv_pid" || true; tv_pid=""
# Where the time went, from timevault's own log (the preview's and the
# apply's phase line of each run; read after it stopped: its log is
# buffered when it goes to a file).
grep -E "pitr preview .*load [0-9.]+|pitr job-.* for tenant .*lock [0-9.]+|staged target" "$work/tv.log" | sed 's/^/phases: /' || true
pgbr check  # switches WAL and waits until the segment is archived

# --- (b) pgBackRest -----------------------------------------------------------------
scratch="$work/scratch"
mkdir -p "$scratch" && chown postgres: "$scratch" && chmod 700 "$scratch"
scratch_port=$(free_port)
tb=$(now)
pgbr --pg1-path="$scratch" --type=time "--target=$T_pgbr" --target-action=promote restore
restore_s=$(since "$tb")
as_pg "$pgbin/pg_ctl" -D "$scratch" -l "$pgbr/scratch.log" -w -t 600 start \
  -o "-p $scratch_port -c unix_socket_directories=$scratch -c archive_mode=off -c listen_addresses=127.0.0.1" >/dev/null
until [[ "$(psql -qXAt -p "$scratch_port" -c "SELECT pg_is_in_recovery()")" == f ]]; do sleep 0.05; done
started_s=$(since "$tb")
psql -qXAt -p "$scratch_port" -c "COPY (SELECT * FROM orders WHERE tenant_id = '$victim') TO STDOUT" |
  psql -qX -1 -c "DELETE FROM orders WHERE tenant_id = '$victim'" -c "COPY orders FROM STDIN"
pgbackrest_s=$(since "$tb")
got=$(fingerprint)
printf '(b) pgbackrest: restore %.2f s, start + recovery to T %.2f s, copy + swap %.2f s, total %.2f s\n' "$restore_s" \
  "$(echo "$started_s - $restore_s" | bc -l)" "$(echo "$pgbackrest_s - $started_s" | bc -l)" "$pgbackrest_s"
[[ "$got" == "$want" ]] || die "pgBackRest restored $got, want $want"
[[ "$(psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id <> '$victim' ORDER BY id) TO STDOUT" | md5sum)" == "$others" ]] ||
  die "the other tenants' rows changed"
echo "both restored ${want%%:*} rows with md5 ${want#*:}; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'timevault_s=%.2f pgbackrest_s=%.2f ratio=%.2f store_bytes_per_db_byte=%.2f ready_s=%.1f peak_rss_mb=%d\n' \
  "$timevault_s" "$pgbackrest_s" "$(echo "$pgbackrest_s / $timevault_s" | bc -l)" \
  "$(echo "$store_bytes / $table_bytes" | bc -l)" "$ready_s" "$peak_rss_mb"
