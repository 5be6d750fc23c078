#!/usr/bin/env bash
# bench-compare.sh (make bench-compare): the crdt benchmarks in Go and the same
# three families in Yjs on Node, one after the other in the same run on the same
# machine, then one table with the Go/Yjs ratio of each row.
#
# Env: BENCH (regex, default 'Replay|Load'), COUNT (go -count, default 3),
# RUNS (timed Yjs runs per row, default 5), QUIRE_TRACES (default ../shared/traces).
set -euo pipefail
cd "$(dirname "$0")/.."

bench=${BENCH:-Replay|Load}
count=${COUNT:-3}
runs=${RUNS:-5}
out=$(mktemp -d "${TMPDIR:-/tmp}/quire-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "== Go: go test -run '^\$' -bench '$bench' -benchmem -count $count ./crdt"
go test -run '^$' -bench "$bench" -benchmem -count "$count" ./crdt | tee "$out/go.txt"
echo
echo "== Yjs $(node -p "require('./node_modules/yjs/package.json').version") on Node $(node --version): crdt/oracle/bench.mjs"
node --expose-gc crdt/oracle/bench.mjs --json --filter "$bench" --runs "$runs" | tee "$out/yjs.jsonl"
echo
node crdt/oracle/bench.mjs --compare "$out/go.txt" "$out/yjs.jsonl"
