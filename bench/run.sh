#!/usr/bin/env bash
# Runs bench/loadgen for each N given (default: 1000 10000) against a fresh
# plain r3labs floor (bench/floor) and then a fresh headcount server, in one
# loadgen invocation, and prints the machine, every result table and the
# ratios to the floor. Everything stays on loopback. Usage, from the
# repository root:
#
#   bench/run.sh [N ...]
#
# Environment: CHURN (default 2000), ROUNDS (default 20), PORT (default 18080;
# the floor listens on PORT+1), EXODUS_KEEP (default 1000), OUT (directory
# for server logs and reports, default /tmp/headcount-bench), PAIRS
# (default 1): how many pairs of the floor and headcount to run for each
# N, each on fresh servers. The first pair measures the floor first, the
# next headcount first, and so on in turn: the second run of a pair finds
# the load generator warm (its memory grown, among others), which made
# the second connect 10,000 streams up to twice as fast. With more than
# one pair, each N ends with the median of the pairs' ratios: on a shared
# 2-core machine one pair's ratio moves by 10% or more from one run to
# the next.
set -euo pipefail

cd "$(dirname "$0")/.."
churn=${CHURN:-2000}
rounds=${ROUNDS:-20}
port=${PORT:-18080}
floor_port=$((port + 1))
keep=${EXODUS_KEEP:-1000}
out=${OUT:-/tmp/headcount-bench}
pairs=${PAIRS:-1}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
mkdir -p "$out"

go build -o "$out/headcount" ./cmd/headcount
go build -o "$out/loadgen" ./bench/loadgen
go build -o "$out/floor" ./bench/floor

# waitUp waits (at most 5 s) until the server on port $1 answers /healthz.
waitUp() {
	for _ in $(seq 50); do
		curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing answers on port $1" >&2
	return 1
}

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
	reports=()
	for pair in $(seq "$pairs"); do
		first=floor
		[ $((pair % 2)) -eq 1 ] || first=headcount
		[ "$pairs" -eq 1 ] || echo "## N = $n, pair $pair of $pairs ($first first)"
		report="$out/report-$n-$pair.md"
		reports+=("$report")
		FLOOR_ADDR=127.0.0.1:$floor_port "$out/floor" >"$out/floor-$n-$pair.log" 2>&1 &
		floor=$!
		# No instance limit: N = 19,000 is above the default (open-file limit - 1,024).
		HEADCOUNT_ADDR=127.0.0.1:$port HEADCOUNT_MAX_STREAMS_PER_USER=0 HEADCOUNT_MAX_STREAMS=0 HEADCOUNT_HEARTBEAT=15s \
			"$out/headcount" >"$out/server-$n-$pair.log" 2>&1 &
		server=$!
		waitUp "$floor_port"
		waitUp "$port"
		rc=0
		order=()
		[ "$first" = floor ] || order=(-floor-last)
		"$out/loadgen" -floor-url "http://127.0.0.1:$floor_port" -url "http://127.0.0.1:$port" "${order[@]}" \
			-streams "$n" -churn "$churn" -rounds "$rounds" -exodus-keep "$keep" \
			-sources 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4 -timeout 10m >"$report" || rc=$?
		cat "$report"
		echo
		echo "load average after N=$n: $(cut -d' ' -f1-3 /proc/loadavg); loadgen exit status $rc"
		kill -TERM "$server" "$floor"
		wait "$server" || echo "server exit status $?"
		wait "$floor" || echo "floor exit status $?"
	done
	if [ "$pairs" -gt 1 ]; then
		"$out/loadgen" median "${reports[@]}"
	fi
done
