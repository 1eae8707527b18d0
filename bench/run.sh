#!/usr/bin/env bash
# Runs bench/loadgen against a fresh headcount server for each N given
# (default: 1000 5000 10000 15000) and prints the machine and every result
# table. Everything stays on loopback. Usage, from the repository root:
#
#   bench/run.sh [N ...]
#
# Environment: CHURN (default 2000), ROUNDS (default 5), PORT (default 18080),
# OUT (directory for server logs, default /tmp/headcount-bench).
set -euo pipefail

cd "$(dirname "$0")/.."
churn=${CHURN:-2000}
rounds=${ROUNDS:-5}
port=${PORT:-18080}
out=${OUT:-/tmp/headcount-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 5000 10000 15000)
mkdir -p "$out"

go build -o "$out/headcount" ./cmd/headcount
go build -o "$out/loadgen" ./bench/loadgen

echo "## Machine"
echo
echo "- nproc: $(nproc)"
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- memory: $(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
echo "- $(go version)"
echo "- open-file limit (hard): $(ulimit -Hn)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- source: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
	"$(git status --porcelain 2>/dev/null | wc -l) uncommitted paths; sha256 of the non-test .go files:" \
	"$(find . -name '*.go' ! -name '*_test.go' ! -path './e2e/node_modules/*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"

for n in "${sizes[@]}"; do
	log="$out/server-$n.log"
	HEADCOUNT_ADDR=127.0.0.1:$port HEADCOUNT_MAX_STREAMS_PER_USER=0 HEADCOUNT_HEARTBEAT=15s \
		"$out/headcount" >"$log" 2>&1 &
	server=$!
	for _ in $(seq 50); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
		sleep 0.1
	done
	rc=0
	"$out/loadgen" -url "http://127.0.0.1:$port" -streams "$n" -churn "$churn" -rounds "$rounds" \
		-sources 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4 -timeout 10m || rc=$?
	echo
	echo "load average after N=$n: $(cut -d' ' -f1-3 /proc/loadavg); loadgen exit status $rc"
	kill -TERM "$server"
	wait "$server" || echo "server exit status $?"
done
