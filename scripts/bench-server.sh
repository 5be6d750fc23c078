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
trap 'rm -rf "$dbdir"' EXIT
cd "$bench"
node bench.mjs \
	--server hocuspocus \
	--server yws \
	--server "quire=cmd:$root/bin/quire serve --listen 127.0.0.1:{port} --db $dbdir/quire-{port}.db --log-level warn" \
	"${floor[@]}" \
	--runs "${RUNS:-3}" \
	"$@"
