#!/usr/bin/env bash
# Lists the functions a worker runs, for build.rs's --symbol-ordering-file (see build.rs).
#
# Runs a release worker under callgrind twice, once on Redis and once on PostgreSQL: it
# starts, runs 20 diagnostics:noop jobs and one failing job, idles, and stops on SIGTERM.
# Every function either run called that exists in the binary is written, in first-call
# order, to link/hot-symbols.txt, followed by the names already there that the binary still
# defines. Needs valgrind and the two services:
#
#   cargo build --release && link/hot-symbols.sh && cargo build --release
#
# CONECTA_HOT_REDIS_URL (redis://127.0.0.1:6379/15) and CONECTA_HOT_POSTGRES_URL
# (postgres://postgres@127.0.0.1:5432/conecta_bench) say where; both are scratch space.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CONECTA_BIN:-$root/target/release/conecta}
redis=${CONECTA_HOT_REDIS_URL:-redis://127.0.0.1:6379/15}
postgres=${CONECTA_HOT_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/conecta_bench}
work=$(mktemp -d)
queue=hot-symbols-$$
trap 'rm -rf "$work"' EXIT

profile() { # name, then the .env lines
  local name=$1 dir=$work/$1
  shift
  mkdir -p "$dir"
  printf '%s\n' "$@" > "$dir/.env"
  (cd "$dir" && "$bin" db migrate >/dev/null)
  (cd "$dir" && timeout -s TERM 50 valgrind --tool=callgrind --demangle=no \
    --callgrind-out-file="$work/$name.out" "$bin" worker --queue "$queue" --sleep 1 \
    --concurrency 4 >"$work/$name.log" 2>&1 || true) &
  local pid=$!
  sleep 20 # valgrind starts slowly
  (cd "$dir" && for _ in $(seq 20); do "$bin" dispatch diagnostics:noop --queue "$queue" >/dev/null; done
   "$bin" dispatch diagnostics:fail --payload '{"message":"profiling"}' --queue "$queue" >/dev/null)
  wait "$pid"
  grep -q 'processed=21' "$work/$name.log" || { echo "$name: the worker did not run its 21 jobs:" >&2; cat "$work/$name.log" >&2; exit 1; }
  echo "$name: profiled" >&2
}

profile redis QUEUE_CONNECTION=redis "REDIS_URL=$redis" "DATABASE_URL=sqlite://$work/state.db"
profile postgres QUEUE_CONNECTION=database "DATABASE_URL=$postgres"

nm --defined-only "$bin" | awk '$2 == "t" || $2 == "T" { print $3 }' | sort -u > "$work/defined"
# This run's functions first, then those of earlier runs the binary still defines: which rare
# paths a run reaches depends on timing, so runs add up rather than replace each other.
list=$root/link/hot-symbols.txt
touch "$list"
{ cat "$work/redis.out" "$work/postgres.out" | grep -oP '^c?fn=\(\d+\) \K.*'; cat "$list"; } \
  | awk 'NR == FNR { d[$0] = 1; next } ($0 in d) && !seen[$0]++' "$work/defined" - > "$work/list"
mv "$work/list" "$list"
echo "link/hot-symbols.txt: $(wc -l < "$list") functions" >&2
