# Shared by the end-to-end benchmark drivers: sourced, not run.

# start_bench_servers: a private Postgres and Kafka broker in a fresh
# $work directory (removed on exit), exports PG*/KAFKA_BOOTSTRAP and creates
# the database `bench` (PGDATABASE).
start_bench_servers() {
  work=$(mktemp -d /tmp/tvbench.XXXXXX)
  trap 'stop_bench_servers' EXIT
  local pg_env kafka_env
  pg_env=$("$root/scripts/pg-local" start "$work" --fast) && eval "$pg_env"
  kafka_env=$("$root/scripts/kafka-local" start "$work") && eval "$kafka_env"
  export PGDATABASE=bench
  psql -qX -d postgres -c "CREATE DATABASE bench"
}

stop_bench_servers() {
  "$root/scripts/kafka-local" stop "$work" >/dev/null 2>&1 || true
  "$root/scripts/pg-local" stop "$work" >/dev/null 2>&1 || true
  rm -rf "$work"
}
