#!/usr/bin/env bash
# End-to-end store benchmark.
#   1. capture produces a multi-tenant workload of ROWS row changes into the
#      real broker (its rate is measured too: the store must keep up with it);
#   2. store_bench ingest consumes all of it into a fresh store with the real
#      consumer: ingest_eps;
#   3. store_bench history builds one tenant with LIVE rows and 1x / 100x
#      history and times StateAt at the newest point in both (median of 5).
# Before the history part: changes=<C> capture_changes_per_s=<X>
# ingest_changes_per_s=<Y> ingest_vs_capture=<Y/X> (same run, same unit).
# Last line: ingest_eps=<N> state_at_ratio_100x=<R>
#
#   bench/store.sh [ROWS] [LIVE] [FACTOR]    (defaults 500000, 100000, 100)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-500000}; live=${2:-100000}; factor=${3:-100}
build="${TVBUILD_DIR:-$root/build}"  # as scripts/build
bin="$build/timevault"; bench="$build/bench/store_bench"
[[ -x "$bin" && -x "$bench" ]] || "$root/scripts/build"
source "$root/bench/lib.sh"
start_bench_servers
psql -qX <<'SQL'
CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, balance numeric(12,2) NOT NULL,
                       status text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE PUBLICATION bench_pub FOR ALL TABLES;
SELECT FROM pg_create_logical_replication_slot('tv', 'pgoutput');
CREATE PROCEDURE workload(txs int) LANGUAGE plpgsql AS $$
DECLARE t int; base bigint;
BEGIN
  FOR t IN 1..txs LOOP
    base := t * 5;
    INSERT INTO accounts SELECT base + g, 'tenant' || ((base + g) % 20), g * 10.5, 'new', now() FROM generate_series(0, 4) g;
    UPDATE accounts SET balance = balance + 1, status = 'active' WHERE id BETWEEN base - 4 AND base - 1;
    DELETE FROM accounts WHERE id = base - 5 AND t % 2 = 0;
    COMMIT;
  END LOOP;
END $$;
SQL
psql -qX -v txs="$((rows / 10))" <<<'CALL workload(:txs)' 
end_lsn=$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")
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
topic_prefix = "sb"
heartbeat_interval_ms = 1000
[store]
path = "$work/unused"
key_file = "$work/unused.key"
TOML
t0=$(date +%s.%N)
"$bin" --config "$work/tv.toml" capture &
pid=$!
until [[ "$(psql -qXAt -c "SELECT confirmed_flush_lsn >= '$end_lsn' FROM pg_replication_slots WHERE slot_name = 'tv'")" == t ]]; do
  kill -0 $pid 2>/dev/null || { echo "capture died" >&2; exit 1; }
  sleep 0.05
done
t1=$(date +%s.%N)
sleep 2  # one more heartbeat
kill -TERM $pid; wait $pid
capture_s=$(echo "$t1 - $t0" | bc -l)
live=$(psql -qXAt -c "SELECT count(*) FROM accounts")  # for the record only
echo "capture: produced the workload in $(cut -c1-6 <<<"$capture_s") s ($live live rows)"

# The store's log lines share stdout: keep only the figures' line. (Not
# `tee /dev/stderr`: with stderr redirected to a file it reopens and
# truncates that file.)
# The broker shares the two cores with the store while it serves the
# fetches: its CPU time during the ingest is printed too.
broker_stat="/proc/$(cat "$work/kafka/broker.pid")/stat"
broker_cpu0=$(awk '{print $14 + $15}' "$broker_stat")
ingest_line=$("$bench" ingest "$KAFKA_BOOTSTRAP" sb "$work/ingest" 2>"$work/ingest.err" | grep '^ingest_eps=')
broker_cpu=$(awk -v c0="$broker_cpu0" '{printf "%.2f", ($14 + $15 - c0) / 100}' "$broker_stat")
grep '^stored:' "$work/ingest.err" >&2 || true
echo "$ingest_line broker_cpu_seconds=$broker_cpu"
# The same unit on both sides: change events (the messages also hold
# BEGIN/END markers, tombstones and heartbeats, which capture's rate omits).
changes=$(sed -nE 's/^stored: ([0-9]+) events.*/\1/p' "$work/ingest.err")
ingest_s=$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$ingest_line")
awk -v n="$changes" -v c="$capture_s" -v i="$ingest_s" \
  'BEGIN { printf "changes=%d capture_changes_per_s=%.0f ingest_changes_per_s=%.0f ingest_vs_capture=%.3f\n", n, n / c, n / i, c / i }'
history_line=$("$bench" history "$live" "$factor" "$work/history" | tee >(cat >&2) | tail -n1)
ingest=$(sed -E 's/.*ingest_eps=([0-9]+).*/\1/' <<<"$ingest_line")
ratio=$(sed -E 's/.*state_at_ratio_[0-9]+x=([0-9.]+).*/\1/' <<<"$history_line")
echo "ingest_eps=$ingest state_at_ratio_${factor}x=$ratio"
