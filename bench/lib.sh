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

# bench_api_toml PORT TOKEN [URL]: the [api] table of a benchmark's config:
# listening on 127.0.0.1:PORT with one admin token for every tenant (and
# api.url, for the CLI to go through it, when URL is given).
bench_api_toml() {
  printf '[api]\nlisten = "127.0.0.1:%s"\n' "$1"
  [[ -n "${3:-}" ]] && printf 'url = "%s"\n' "$3"
  printf '[[api.tokens]]\nname = "bench"\nsha256 = "%s"\nrole = "admin"\ntenants = ["*"]\n' \
    "$(printf %s "$2" | sha256sum | cut -d' ' -f1)"
}
