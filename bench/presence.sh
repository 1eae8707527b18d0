#!/usr/bin/env bash
# Presence on against presence off: N streams held by P people, against a
# fresh headcount server for each run, HEADCOUNT_PRESENCE=names and =count
# alternating, PAIRS times; every fan-out join and leave is by a person of
# its own, so with names it is announced. Prints one loadgen report per run.
# Everything stays on loopback. Usage, from the repository root:
#
#   bench/presence.sh            # N=10000 P=1000 PAIRS=4 ROUNDS=30
#
# Environment: N, P, PAIRS, ROUNDS, PORT (default 18090), OUT (server logs,
# default /tmp/headcount-presence).
set -euo pipefail

cd "$(dirname "$0")/.."
n=${N:-10000}
people=${P:-1000}
pairs=${PAIRS:-4}
rounds=${ROUNDS:-30}
port=${PORT:-18090}
out=${OUT:-/tmp/headcount-presence}
mkdir -p "$out"
go build -o "$out/headcount" ./cmd/headcount
go build -o "$out/loadgen" ./bench/loadgen
ulimit -n 20000
server=
# A failing step ends the script (set -e); the server it started goes too.
trap '[ -n "$server" ] && kill "$server" 2>/dev/null' EXIT

for pair in $(seq "$pairs"); do
	# The order alternates, so neither mode always runs on the fresher machine.
	modes="names count"
	[ $((pair % 2)) -eq 0 ] && modes="count names"
	for mode in $modes; do
		HEADCOUNT_ADDR=127.0.0.1:$port HEADCOUNT_MAX_STREAMS_PER_USER=0 HEADCOUNT_MAX_STREAMS=0 HEADCOUNT_PRESENCE=$mode \
			"$out/headcount" >"$out/server-$mode-$pair.log" 2>&1 &
		server=$!
		for _ in $(seq 50); do
			curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
			sleep 0.1
		done
		if ! curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"; then
			echo "the server did not start; its log:" >&2
			cat "$out/server-$mode-$pair.log" >&2
			exit 1
		fi
		echo
		echo "## pair $pair, HEADCOUNT_PRESENCE=$mode (load average $(cut -d' ' -f1-3 /proc/loadavg))"
		# The pause outlasts the hub's leave grace (250 ms), so every
		# fan-out join announces an arrival.
		"$out/loadgen" -url "http://127.0.0.1:$port" -streams "$n" -people "$people" \
			-churn 0 -exodus-keep 0 -rounds "$rounds" -pause 600ms -quiet
		kill "$server"
		wait "$server" || true
		server=
	done
done
