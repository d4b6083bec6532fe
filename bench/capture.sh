#!/usr/bin/env bash
# End-to-end capture benchmark against the physical limit of decoding.
#
# Generates a fixed multi-tenant workload (ROWS row changes: inserts, updates
# and deletes in small transactions) after creating 2*RUNS logical slots at
# the same position, then times, RUNS times each:
#   (a) pg_recvlogical reading the changes (pgoutput, same publication) to
#       /dev/null until the workload's end LSN: the cost of decoding alone;
#   (b) timevault capture producing them to the real broker until Postgres
#       has the end LSN confirmed, i.e. Kafka acknowledged every event;
#   (c) the real Debezium 3.6.1 Postgres connector (tests/compat's embedded
#       runner, snapshot.mode no_data on its own slot at the same position)
#       producing the same changes to the same broker with a KafkaProducer
#       (acks=all, idempotent, lz4, linger 5 ms as capture), each batch
#       acknowledged before the next; timed from its first change record to
#       the acknowledgement of the last one (JVM and connector start-up not
#       counted, which favours Debezium). TVBENCH_DEBEZIUM=0 skips it.
# Each run line also gives the CPU seconds of capture, its walsender and the
# broker, and capture's CPU per event.
# Last line: capture_eps=<N> recvlogical_eps=<M> ratio=<N/M>
#            debezium_eps=<D> debezium_ratio=<N/D> capture_us_per_event=<C> (medians).
#
#   bench/capture.sh [ROWS] [RUNS]     (defaults 300000, 3; TVBENCH_BIN: another binary)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-300000}; runs=${2:-3}
bin="${TVBENCH_BIN:-$root/build/timevault}"
[[ -x "$bin" ]] || "$root/scripts/build"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
source "$root/bench/lib.sh"
start_bench_servers
psql -qX <<'SQL'
CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id text NOT NULL, balance numeric(12,2) NOT NULL,
                       status text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE events (id bigserial PRIMARY KEY, tenant_id text NOT NULL, account_id bigint NOT NULL,
                     kind text NOT NULL, payload jsonb, at timestamptz NOT NULL DEFAULT now());
CREATE PUBLICATION bench_pub FOR ALL TABLES WITH (publish_via_partition_root = true);
SQL
for i in $(seq 1 "$runs"); do
  psql -qXAt -c "SELECT pg_create_logical_replication_slot('recv_$i', 'pgoutput')" >/dev/null
  psql -qXAt -c "SELECT pg_create_logical_replication_slot('tv_$i', 'pgoutput')" >/dev/null
  [[ "${TVBENCH_DEBEZIUM:-1}" == 0 ]] ||
    psql -qXAt -c "SELECT pg_create_logical_replication_slot('dbz_$i', 'pgoutput')" >/dev/null
done
if [[ "${TVBENCH_DEBEZIUM:-1}" != 0 ]]; then
  "$root/tests/compat/setup"
  runner_cp="$root/.cache/compat/target/lib/*:$root/.cache/compat/target/compat-runner.jar"
fi

# The workload: ROWS row changes, about half inserts, 35% updates, 15% deletes,
# 20 tenants, 10 changes per transaction.
txs=$((rows / 10))
psql -qX -v txs="$txs" <<'SQL'
CREATE PROCEDURE workload(txs int) LANGUAGE plpgsql AS $$
DECLARE t int; base bigint;
BEGIN
  FOR t IN 1..txs LOOP
    base := t * 4;
    INSERT INTO accounts SELECT base + g, 'tenant' || ((base + g) % 20), g * 10.5, 'new', now() FROM generate_series(0, 3) g;
    INSERT INTO events (tenant_id, account_id, kind, payload) VALUES
      ('tenant' || (base % 20), base, 'open', '{"k": 1}'), ('tenant' || (base % 20), base + 1, 'open', NULL);
    UPDATE accounts SET balance = balance + 1, status = 'active' WHERE id BETWEEN base - 3 AND base - 1;
    DELETE FROM accounts WHERE id = base - 4 AND t % 2 = 0;
    DELETE FROM events WHERE id = (t * 2) - 1 AND t % 3 = 0;
    COMMIT;
  END LOOP;
END $$;
CALL workload(:txs);
SQL
end_lsn=$(psql -qXAt -c "SELECT pg_current_wal_insert_lsn()")
changes=$(psql -qXAt -c "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('recv_1', NULL, NULL, 'proto_version', '1', 'publication_names', 'bench_pub') WHERE get_byte(data, 0) IN (73, 85, 68)")
echo "workload: $changes row changes in $txs transactions, end LSN $end_lsn"

# Warm the broker up: the first idempotent producer waits for the
# transaction coordinator to load (seconds on a busy machine), which the
# first timed run must not pay.
echo warmup | kcat -P -b "$KAFKA_BOOTSTRAP" -t bench_warmup -X enable.idempotence=true

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# CPU seconds (user + system) of a process so far.
cpu_of() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Debezium run $1: sets dbz_rate and dbz_cpu.
run_debezium() {
  local i=$1 log="$work/dbz_$i.log" stop="$work/dbz_$i.stop" pid line first last t0=$SECONDS
  java -Xmx1g -cp "$runner_cp" dev.timevault.compat.DebeziumRunner \
    --host "$PGHOST" --port "$PGPORT" --user "$PGUSER" --dbname bench --slot "dbz_$i" --publication bench_pub \
    --prefix "dbz$i" --snapshot-mode no_data --kafka-bootstrap "$KAFKA_BOOTSTRAP" --expect-records "$changes" \
    --stop-file "$stop" --idle-timeout-s 0 --max-runtime-s 1800 >"$log" 2>&1 &
  pid=$!
  until line=$(grep -m1 '^compat-runner: reached' "$log"); do
    kill -0 $pid 2>/dev/null || { tail -n 30 "$log" >&2; echo "debezium died" >&2; exit 1; }
    ((SECONDS - t0 < 1800)) || { echo "debezium did not finish" >&2; exit 1; }
    sleep 0.2
  done
  dbz_cpu=$(cpu_of $pid)
  first=$(sed -E 's/.*first_ms=([0-9]+).*/\1/' <<<"$line"); last=$(sed -E 's/.*last_ms=([0-9]+).*/\1/' <<<"$line")
  dbz_rate=$(echo "$changes * 1000 / ($last - $first)" | bc -l)
  touch "$stop"; wait $pid || true
  grep -E 'records sent during' "$log" | sed -E 's/^.* ([0-9]+ records sent during previous [0-9:.]+).*/    debezium: \1/' >&2 || true
}

recv_rates=(); cap_rates=(); dbz_rates=(); cap_us=()
for i in $(seq 1 "$runs"); do
  t0=$(now)
  "$pgbin/pg_recvlogical" -d bench -S "recv_$i" --start -o proto_version=1 -o publication_names=bench_pub \
    -E "$end_lsn" -f /dev/null --no-loop
  t1=$(now)
  recv_rates+=("$(echo "$changes / ($t1 - $t0)" | bc -l)")

  cat > "$work/tv_$i.toml" <<TOML
log_level = "warn"
[postgres]
conninfo = "host=$PGHOST port=$PGPORT user=$PGUSER dbname=bench"
slot = "tv_$i"
publication = "bench_pub"
snapshot_mode = "no_data"
status_interval_ms = 100
[kafka]
bootstrap = "$KAFKA_BOOTSTRAP"
topic_prefix = "bench$i"
${TVBENCH_KAFKA:-}
[store]
path = "$work/store"
key_file = "$work/key"
TOML
  broker_cpu0=$(awk '{print $14 + $15}' "/proc/$(cat "$work/kafka/broker.pid")/stat")
  t0=$(now)
  "$bin" --config "$work/tv_$i.toml" capture &
  pid=$!
  wal_pid=""
  until [[ "$(psql -qXAt -c "SELECT confirmed_flush_lsn >= '$end_lsn' FROM pg_replication_slots WHERE slot_name = 'tv_$i'")" == t ]]; do
    kill -0 $pid 2>/dev/null || { echo "capture died" >&2; exit 1; }
    [[ -n "$wal_pid" ]] || wal_pid=$(psql -qXAt -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'tv_$i'")
    sleep 0.05
  done
  t1=$(now)
  cpu=$(cpu_of $pid)
  wal_cpu=$( [[ -n "$wal_pid" ]] && cpu_of "$wal_pid" || echo "?")
  broker_cpu=$(awk -v c0="$broker_cpu0" '{printf "%.2f", ($14 + $15 - c0) / 100}' "/proc/$(cat "$work/kafka/broker.pid")/stat")
  kill -TERM $pid; wait $pid
  cap_rates+=("$(echo "$changes / ($t1 - $t0)" | bc -l)")
  cap_us+=("$(echo "$cpu * 1000000 / $changes" | bc -l)")
  printf 'run %d: recvlogical %.0f ev/s, capture %.0f ev/s (CPU: capture %ss = %.2f us/event, walsender %ss, broker %ss, over %.2fs)\n' \
    "$i" "${recv_rates[-1]}" "${cap_rates[-1]}" "$cpu" "${cap_us[-1]}" "$wal_cpu" "$broker_cpu" "$(echo "$t1 - $t0" | bc -l)"
  if [[ "${TVBENCH_DEBEZIUM:-1}" != 0 ]]; then
    run_debezium "$i"
    dbz_rates+=("$dbz_rate")
    printf 'run %d: debezium %.0f ev/s (CPU: %ss, JVM start-up included)\n' "$i" "$dbz_rate" "$dbz_cpu"
  fi
done
cap=$(median "${cap_rates[@]}"); recv=$(median "${recv_rates[@]}"); us=$(median "${cap_us[@]}")
if [[ "${TVBENCH_DEBEZIUM:-1}" != 0 ]]; then
  dbz=$(median "${dbz_rates[@]}")
  printf 'capture_eps=%.0f recvlogical_eps=%.0f ratio=%.3f debezium_eps=%.0f debezium_ratio=%.2f capture_us_per_event=%.2f\n' \
    "$cap" "$recv" "$(echo "$cap / $recv" | bc -l)" "$dbz" "$(echo "$cap / $dbz" | bc -l)" "$us"
else
  printf 'capture_eps=%.0f recvlogical_eps=%.0f ratio=%.3f capture_us_per_event=%.2f\n' \
    "$cap" "$recv" "$(echo "$cap / $recv" | bc -l)" "$us"
fi
