#!/usr/bin/env bash
# go tool task cluster: two headcount instances sharing one local Redis and
# one generated session secret, for trying several instances on a laptop.
#
#   scripts/cluster.sh [PORT_A PORT_B]     (default 8081 8082)
#
# Uses the Redis at HEADCOUNT_REDIS_URL, or redis://127.0.0.1:6379, and
# starts a throwaway redis-server there if none answers. CLUSTER_BINARY
# names a binary to run instead of building one. Ctrl-C stops everything
# this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

port_a=${1:-8081}
port_b=${2:-8082}
redis_url=${HEADCOUNT_REDIS_URL:-redis://127.0.0.1:6379}
hostport=${redis_url#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
redis_host=${hostport%:*}
redis_port=${hostport##*:}

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit 0
}
trap stop INT TERM EXIT

if ! redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1; then
  if [[ $redis_url != redis://127.0.0.1:* && $redis_url != redis://localhost:* ]]; then
    echo "no Redis answers at $redis_url" >&2
    exit 1
  fi
  echo "starting redis-server on 127.0.0.1:$redis_port (stopped with the instances)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "${TMPDIR:-/tmp}" --logfile "" >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

bin=${CLUSTER_BINARY:-}
if [[ -z $bin ]]; then
  go build -o .bin/headcount ./cmd/headcount
  bin=.bin/headcount
fi
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

for port in "$port_a" "$port_b"; do
  HEADCOUNT_ADDR=127.0.0.1:$port HEADCOUNT_REDIS_URL=$redis_url \
    HEADCOUNT_SESSION_SECRET=$secret "$bin" \
    > >(sed -u "s/^/[:$port] /") 2>&1 &
  pids+=($!)
done

for port in "$port_a" "$port_b"; do
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
cat <<MSG

Two headcount instances share $redis_url and one session secret:
  http://localhost:$port_a
  http://localhost:$port_b
Sign in on one: the session is valid on both, and both show one count.
Ctrl-C stops them.

MSG
wait
