#!/usr/bin/env bash
# End-to-end replay benchmark against the physical limit of loading (COPY).
#
# One tenant ("t1") gets ROWS rows (6 columns: numeric, text, timestamptz) in
# a table shared with four other tenants; capture and store run until the
# store's recoverable point covers first the inserts (LSN L1) and then the
# deletion of all of t1's rows (L2); then both stop, so what follows is
# timed alone. RUNS times, alternating:
#   (a) `pitr preview --tenant t1 --lsn L1` (load the state at L1 into a
#       temporary table, diff: ROWS inserts), `pitr execute --confirm` (the
#       same again, snapshot, apply: ROWS inserts) and `rollback` of the
#       execute's snapshot (ROWS deletes, back to the state at L2); every run
#       checks the operation counts and that the restored rows equal t1's rows
#       at L1 byte for byte (md5 of their COPY text);
#   (b) psql `\copy` of the same rows (dumped at L1) into an empty copy of the
#       table with the same indexes: the physical limit.
# Per run it prints the seconds of each step and the execute's phases (from
# its progress lines on stderr). Last line (medians; pitr = preview + execute,
# what an operator waits for):
#   pitr_rows_per_s=<N> copy_rows_per_s=<M> ratio=<N/M>
#
#   bench/replay.sh [ROWS] [RUNS]     (defaults 200000, 3)
# TVBENCH_API=1: the same commands go through a `timevault serve` started
# after the setup (api.url: no store opened per command, and the execute
# reuses the target its preview staged); its lines start with "api:".
# Each timevault command is stopped after TVBENCH_STEP_TIMEOUT seconds
# (default 900) and the benchmark then fails, naming the step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-200000}; runs=${2:-3}; step_timeout=${TVBENCH_STEP_TIMEOUT:-900}
build="${TVBUILD_DIR:-$root/build}"  # as scripts/build
bin="$build/timevault"
[[ -x "$bin" ]] || "$root/scripts/build"
source "$root/bench/lib.sh"
source "$root/scripts/lib.sh"  # free_port
start_bench_servers
tenant=t1; others=$((rows / 10))

psql -qXAt -c "SELECT FROM pg_create_logical_replication_slot('tv', 'pgoutput')" >/dev/null
psql -qX <<'SQL'
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id text NOT NULL, customer text NOT NULL,
                     amount numeric(12,2) NOT NULL, status text NOT NULL, placed_at timestamptz NOT NULL);
CREATE INDEX ON orders (tenant_id);
CREATE TABLE orders_copy (LIKE orders INCLUDING ALL);  -- COPY's target; not captured
CREATE PUBLICATION bench_pub FOR TABLE orders;
CREATE PROCEDURE fill(tenant text, first bigint, n bigint, txs int) LANGUAGE plpgsql AS $$
DECLARE t int; per bigint := n / txs; lo bigint;
BEGIN
  FOR t IN 0..txs - 1 LOOP
    lo := first + t * per;
    INSERT INTO orders
      SELECT g, tenant, 'customer ' || (g % 997), round(((g * 7.31) % 10000)::numeric, 2),
             (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
             timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'
      FROM generate_series(lo, CASE WHEN t = txs - 1 THEN first + n - 1 ELSE lo + per - 1 END) g;
    COMMIT;
  END LOOP;
END $$;
SQL

cat > "$work/tv.toml" <<TOML
log_level = "warn"
[postgres]
conninfo = "host=$PGHOST port=$PGPORT user=$PGUSER dbname=bench"
slot = "tv"
publication = "bench_pub"
snapshot_mode = "no_data"
status_interval_ms = 100
[kafka]
bootstrap = "$KAFKA_BOOTSTRAP"
topic_prefix = "rb"
heartbeat_interval_ms = 500
[store]
path = "$work/store"
key_file = "$work/master.key"
TOML
head -c 32 /dev/urandom > "$work/master.key"; chmod 600 "$work/master.key"
tv() { timeout "$step_timeout" "$bin" --config "$work/tv.toml" "$@"; }
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The number after "KEY": in the pretty-printed JSON of a command (first match).
json_num() { sed -nE "s/^ *\"$1\": ([0-9.e+-]+),?$/\1/p" "$2" | head -n1; }
json_str() { sed -nE "s/^ *\"$1\": \"([^\"]*)\",?$/\1/p" "$2" | head -n1; }
# The md5 of a tenant's rows of a table as COPY text, in key order.
rows_md5() { psql -qXAt -c "COPY (SELECT * FROM $1 WHERE tenant_id = '$tenant' ORDER BY id) TO STDOUT" | md5sum | cut -c1-32; }
count() { psql -qXAt -c "SELECT count(*) FROM orders WHERE $1"; }
die() { echo "replay bench: $*" >&2; exit 1; }
limit="(exit 124: over TVBENCH_STEP_TIMEOUT=${step_timeout}s)"

"$bin" --config "$work/tv.toml" capture 2>"$work/capture.log" &
capture_pid=$!
"$bin" --config "$work/tv.toml" store 2>"$work/store.log" &
store_pid=$!
# On any exit, capture and store go before the servers do.
trap 'kill -TERM $capture_pid $store_pid 2>/dev/null || true; wait; stop_bench_servers' EXIT
# Blocks until the store's recoverable point covers LSN $1 (StateAt there succeeds).
wait_recoverable() {
  local deadline=$((SECONDS + 600))
  until tv state --tenant nobody --at "$1" >/dev/null 2>"$work/wait.err"; do
    kill -0 $capture_pid 2>/dev/null || die "capture died: $(tail -n5 "$work/capture.log")"
    kill -0 $store_pid 2>/dev/null || die "store died: $(tail -n5 "$work/store.log")"
    ((SECONDS < deadline)) || die "the store did not reach $1 in 600 s: $(cat "$work/wait.err")"
    sleep 0.5
  done
}

t0=$(now)
for i in 2 3 4 5; do psql -qX -c "CALL fill('t$i', $((rows + (i - 2) * others + 1)), $others, 2)"; done
psql -qX -c "CALL fill('$tenant', 1, $rows, 4)"
l1=$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")
psql -qX -c "\\copy (SELECT * FROM orders WHERE tenant_id = '$tenant') TO '$work/rows.copy'"
want_md5=$(rows_md5 orders)
others_md5=$(psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id <> '$tenant' ORDER BY id) TO STDOUT" | md5sum)
wait_recoverable "$l1"
t1=$(now)
psql -qX -c "DELETE FROM orders WHERE tenant_id = '$tenant'"
l2=$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")
wait_recoverable "$l2"
kill -TERM $capture_pid $store_pid; wait $capture_pid; wait $store_pid
if [[ "${TVBENCH_API:-}" == 1 ]]; then
  # The commands through a running API (docs/replay.md, "Through the API").
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'); export TIMEVAULT_TOKEN=$token
  api_port=$(free_port)
  bench_api_toml "$api_port" "$token" "http://127.0.0.1:$api_port" >>"$work/tv.toml"
  "$bin" --config "$work/tv.toml" serve 2>"$work/serve.log" &
  serve_pid=$!
  trap 'kill -TERM $serve_pid 2>/dev/null || true; wait; stop_bench_servers' EXIT
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$api_port/livez" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$api_port/livez" >/dev/null || die "serve did not start: $(tail -n5 "$work/serve.log")"
  echo "api: pitr, execute and rollback through timevault serve at 127.0.0.1:$api_port"
fi
printf 'setup: %d rows of %s + 4 x %d of other tenants captured and stored in %.1f s; L1 %s (all rows), L2 %s (none)\n' \
  "$rows" "$tenant" "$others" "$(echo "$t1 - $t0" | bc -l)" "$l1" "$l2"

# Seconds per phase of an apply, from its progress lines stamped on arrival:
# "<epoch> <phase> <percent>%"; each phase lasts until the next one starts.
stamp() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }
phases() {
  awk -v t0="$1" -v t_end="$2" '
    NF == 3 && $3 ~ /%$/ && $2 != last { if (last != "") printf "%s %.2fs, ", last, $1 - start; else printf "start %.2fs, ", $1 - t0;
                 last = $2; start = $1 }
    END { printf "%s+exit %.2fs\n", last, t_end - start }' "$3"
}

pitr_rates=(); exec_rates=(); copy_rates=()
for i in $(seq 1 "$runs"); do
  ta=$(now)
  tv pitr preview --tenant "$tenant" --lsn "$l1" --table public.orders >"$work/plan.json" ||
    die "run $i: preview failed with exit $? $limit"
  tb=$(now)
  plan=$(json_str plan_id "$work/plan.json")
  [[ "$(json_num insert "$work/plan.json")" == "$rows" && "$(json_num total "$work/plan.json")" == "$rows" ]] ||
    die "run $i: the plan is not $rows inserts: $(cat "$work/plan.json")"
  tv pitr execute --plan "$plan" --confirm 2>&1 >"$work/exec.json" | stamp >"$work/exec.progress" ||
    die "run $i: execute failed with exit $? $limit: $(cat "$work/exec.progress")"
  tc=$(now)
  [[ "$(json_num insert "$work/exec.json")" == "$rows" ]] || die "run $i: execute did not insert $rows rows"
  [[ "$(rows_md5 orders)" == "$want_md5" ]] || die "run $i: the restored rows differ from the rows at L1"
  grep -q '"verified": true' "$work/exec.json" || die "run $i: execute did not report verified: $(cat "$work/exec.json")"
  snapshot=$(json_str snapshot_id "$work/exec.json")
  estimate=$(json_num estimated_seconds "$work/plan.json"); estimate=${estimate:-0}
  preview_s=$(echo "$tb - $ta" | bc -l); exec_s=$(echo "$tc - $tb" | bc -l)
  printf 'run %d: preview %.2fs, execute %.2fs (estimated %.2fs); execute phases: %s\n' \
    "$i" "$preview_s" "$exec_s" "$estimate" \
    "$(if [[ "${TVBENCH_API:-}" == 1 ]]; then echo "(in the API's log)"; else phases "$tb" "$tc" "$work/exec.progress"; fi)"
  td=$(now)
  tv rollback --snapshot "$snapshot" --confirm 2>"$work/rollback.err" >"$work/rollback.json" ||
    die "run $i: rollback failed with exit $? $limit: $(cat "$work/rollback.err")"
  te=$(now)
  [[ "$(json_num delete "$work/rollback.json")" == "$rows" && "$(count "tenant_id = '$tenant'")" == 0 ]] ||
    die "run $i: rollback did not delete $rows rows"
  grep -q '"verified": true' "$work/rollback.json" || die "run $i: rollback did not report verified"

  psql -qX -c "TRUNCATE orders_copy"
  tf=$(now)
  psql -qX -c "\\copy orders_copy FROM '$work/rows.copy'"
  tg=$(now)
  [[ "$(rows_md5 orders_copy)" == "$want_md5" ]] || die "run $i: COPY loaded other rows"

  rollback_s=$(echo "$te - $td" | bc -l); copy_s=$(echo "$tg - $tf" | bc -l)
  pitr_rates+=("$(echo "$rows / ($preview_s + $exec_s)" | bc -l)")
  exec_rates+=("$(echo "$rows / $exec_s" | bc -l)")
  copy_rates+=("$(echo "$rows / $copy_s" | bc -l)")
  printf '       rollback %.2fs, COPY %.2fs -> pitr %.0f rows/s (execute alone %.0f), rollback %.0f rows/s, COPY %.0f rows/s\n' \
    "$rollback_s" "$copy_s" "${pitr_rates[-1]}" "${exec_rates[-1]}" "$(echo "$rows / $rollback_s" | bc -l)" \
    "${copy_rates[-1]}"
done
[[ "$(psql -qXAt -c "COPY (SELECT * FROM orders WHERE tenant_id <> '$tenant' ORDER BY id) TO STDOUT" | md5sum)" == "$others_md5" ]] ||
  die "the other tenants' rows changed"
pitr=$(median "${pitr_rates[@]}"); exec_rate=$(median "${exec_rates[@]}"); copy=$(median "${copy_rates[@]}")
printf 'execute_rows_per_s=%.0f execute_ratio=%.3f\n' "$exec_rate" "$(echo "$exec_rate / $copy" | bc -l)"
printf 'pitr_rows_per_s=%.0f copy_rows_per_s=%.0f ratio=%.3f\n' "$pitr" "$copy" "$(echo "$pitr / $copy" | bc -l)"
