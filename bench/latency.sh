#!/usr/bin/env bash
# Commit -> recoverable latency through the API, under load.
#
# Starts a private Postgres and Kafka broker and `timevault run` (capture,
# store and API in one process, the store syncing its WAL before the
# recoverable point moves, as always), then RUNS times: pgbench commits
# single-row transactions at TXS per second (4 clients) for SECONDS, and
# build/bench/latency_probe commits one more single-row transaction every
# 20 ms on its own connection and polls GET /v1/recoverable-point back to back: a
# sample's latency runs from its COMMIT's return to the first API answer
# whose recoverable_point.lsn passes the commit (the server's WAL write
# position read right after it).
# Last line: tx_per_s=<achieved, median> p50_ms=<median> p99_ms=<median>.
#
#   bench/latency.sh [TXS] [SECONDS] [RUNS]      (defaults 5000, 20, 3)
#
# TVBENCH_BIN: another timevault binary (an A/B against an older build).
# TVBENCH_TOML: extra lines for the [kafka] section of timevault's config
# (e.g. 'linger_ms = 1'), to compare settings.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
txs=${1:-5000}; seconds=${2:-20}; runs=${3:-3}
build="${TVBUILD_DIR:-$root/build}"
bin="${TVBENCH_BIN:-$build/timevault}"; probe="$build/bench/latency_probe"
[[ -x "$bin" && -x "$probe" ]] || "$root/scripts/build"
source "$root/scripts/lib.sh"
source "$root/bench/lib.sh"
die() { echo "latency: $*" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start_bench_servers
tv_pid=""
cleanup() {
  [[ -n "$tv_pid" ]] && { kill -TERM "$tv_pid" 2>/dev/null || true; wait "$tv_pid" 2>/dev/null || true; }
  stop_bench_servers
}
trap cleanup EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

psql -qX <<'SQL'
CREATE TABLE orders (id bigserial PRIMARY KEY, tenant_id text NOT NULL, amount int NOT NULL,
                     placed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE latency_probe (id bigserial PRIMARY KEY, tenant_id text NOT NULL, n int NOT NULL);
CREATE PUBLICATION bench_pub FOR ALL TABLES WITH (publish_via_partition_root = true);
SQL

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
[kafka]
bootstrap = "$KAFKA_BOOTSTRAP"
topic_prefix = "lat"
$(printf '%b' "${TVBENCH_TOML:-}")
[store]
path = "$work/store"
key_file = "$work/master.key"
$(bench_api_toml "$api_port" "$token")
TOML
"$bin" --config "$work/tv.toml" run >"$work/tv.log" 2>&1 &
tv_pid=$!
conninfo="host=$PGHOST port=$PGPORT user=$PGUSER dbname=bench"
# Ready when a first probe transaction becomes recoverable.
for _ in $(seq 600); do
  kill -0 "$tv_pid" 2>/dev/null || die "timevault run died: $(tail -n5 "$work/tv.log")"
  "$probe" "$conninfo" "$url" "$token" 1 1 >/dev/null 2>&1 && break
  sleep 0.5
done

cat >"$work/load.sql" <<'SQL'
\set t random(1, 20)
INSERT INTO orders (tenant_id, amount) VALUES ('tenant' || :t, :t);
SQL
samples=$(((seconds - 4) * 50))
tps_all=(); p50_all=(); p99_all=()
for i in $(seq 1 "$runs"); do
  pgbench -n -c 4 -j 2 -R "$txs" -T "$seconds" -f "$work/load.sql" bench >"$work/pgbench_$i.log" 2>&1 &
  load_pid=$!
  sleep 2  # the load running at its rate before the first sample
  line=$("$probe" "$conninfo" "$url" "$token" "$samples" 20) || die "probe failed: $line"
  wait "$load_pid" || die "pgbench failed: $(tail -n5 "$work/pgbench_$i.log")"
  tps=$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' "$work/pgbench_$i.log" | head -n1)
  lag=$(sed -nE 's/.*average lag = ([0-9.]+) ms/\1/p' "$work/pgbench_$i.log" | head -n1)
  p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line"); p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
  tps_all+=("$tps"); p50_all+=("$p50"); p99_all+=("$p99")
  echo "run $i: pgbench ${tps} tx/s (schedule lag ${lag:-?} ms); $line; load $(cut -d' ' -f1 /proc/loadavg)"
done
printf 'tx_per_s=%.0f p50_ms=%s p99_ms=%s\n' "$(median "${tps_all[@]}")" "$(median "${p50_all[@]}")" \
  "$(median "${p99_all[@]}")"
