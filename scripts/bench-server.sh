#!/usr/bin/env bash
# Builds quire and runs the load benchmark of ../shared/bench with Quire
# beside Hocuspocus and the y-websocket reference server, in one run, and
# prints the table. Extra arguments go to bench.mjs (e.g. --workload W1
# --runs 3 --duration 5).
#
#   bash scripts/bench-server.sh [bench.mjs options]
#
# Quire runs with durable commits (its default: SQLite WAL, synchronous
# NORMAL, every update committed before any peer receives it), on a fresh
# database per run under /tmp.
#
# FLOOR=1 adds scripts/relayfloor to the run: a relay with no CRDT and no
# store, whose numbers are what the harness itself costs on this machine.
# It is for W1 and W2: storing nothing, it cannot bring W3's late joiners
# up to date, so its W3 rows fail and the script then exits 1.
#
# WIRE=1 captures the run's loopback traffic with tcpdump (installed from
# Debian's packages when missing) and prints, after the generator's table,
# each server's relay latency as the wire saw it (scripts/wirelat): from the
# segment that brought an update in to each segment that took it out,
# without the generator's own sending, receiving and scheduling. Meant for
# --workload W1 (W3's documents make the capture large).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${QUIRE_BENCH_DIR:-$root/../shared/bench}"
if [ ! -f "$bench/bench.mjs" ]; then
	echo "bench-server: no load generator at $bench (set QUIRE_BENCH_DIR)" >&2
	exit 1
fi
mkdir -p "$root/bin"
# Linked as make builds it (see GOLDFLAGS in the Makefile).
(cd "$root" && go build -ldflags "$(cat scripts/go-ldflags)" -o bin/quire .)
floor=()
if [ "${FLOOR:-}" = 1 ]; then
	(cd "$root" && go build -o bin/relayfloor ./scripts/relayfloor)
	floor=(--server "relay-floor=cmd:$root/bin/relayfloor -listen 127.0.0.1:{port}")
fi
if [ ! -d "$bench/node_modules" ]; then
	(cd "$bench" && npm ci --no-audit --no-fund)
fi
dbdir="$(mktemp -d /tmp/quire-bench.XXXXXX)"
tcpdump_pid=
cleanup() {
	if [ -n "$tcpdump_pid" ]; then kill "$tcpdump_pid" 2>/dev/null || true; fi
	rm -rf "$dbdir"
}
trap cleanup EXIT
labels=hocuspocus,yws,quire
if [ "${FLOOR:-}" = 1 ]; then labels="$labels,relay-floor"; fi
if [ "${WIRE:-}" = 1 ]; then
	SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
	if ! command -v tcpdump >/dev/null; then
		echo "bench-server: installing Debian's tcpdump" >&2
		$SUDO apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tcpdump >/dev/null
	fi
	(cd "$root" && go build -o bin/wirelat ./scripts/wirelat)
	# Whole packets (-s 0), written as they come (-U), from before the
	# first server starts: every connection's handshake must be in it; as
	# this user (-Z), who owns the folder it writes to.
	$SUDO tcpdump -Z "$(id -un)" -i lo -s 0 -U -w "$dbdir/wire.pcap" tcp 2>"$dbdir/tcpdump.log" &
	tcpdump_pid=$!
	for _ in $(seq 50); do
		grep -q "listening on" "$dbdir/tcpdump.log" 2>/dev/null && break
		sleep 0.1
	done
fi
cd "$bench"
status=0
node bench.mjs \
	--server hocuspocus \
	--server yws \
	--server "quire=cmd:$root/bin/quire serve --listen 127.0.0.1:{port} --db $dbdir/quire-{port}.db --log-level warn" \
	"${floor[@]}" \
	--runs "${RUNS:-3}" \
	"$@" || status=$?
if [ -n "$tcpdump_pid" ]; then
	kill -INT "$tcpdump_pid"
	wait "$tcpdump_pid" || true
	tcpdump_pid=
	echo
	echo "### Relay latency on the wire (scripts/wirelat: update in -> each delivery out, as tcpdump saw them)"
	echo
	"$root/bin/wirelat" -labels "$labels" "$dbdir/wire.pcap"
fi
exit "$status"
