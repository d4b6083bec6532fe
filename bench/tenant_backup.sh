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
bench=tenant_backup
source "$root/bench/tenant_setup.sh"


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
