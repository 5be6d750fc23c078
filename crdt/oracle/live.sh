#!/usr/bin/env bash
# live.sh: the differential test on fresh random seeds (make oracle).
#
# Records ORACLE_SEEDS (default 40) new seeds from real Yjs with
# crdt/oracle/gen.mjs, all profiles in turn, into a temp dir, then runs the Go
# differential tests on them (Yjs -> Go), and the reverse test (Go -> Yjs) on 8
# fresh seeds of its own. The committed seeds run in plain `go test ./crdt`;
# this checks seeds nobody has seen before.
# ORACLE_BASE fixes the first seed (to re-run a failure); a failing run keeps its
# recordings and prints how to re-run exactly them.
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${ORACLE_SEEDS:-40}
base=${ORACLE_BASE:-$(( $(od -An -N4 -tu4 /dev/urandom) % 4000000000 + 1000 ))}
last=$(( base + n - 1 ))
dir=$(mktemp -d "${TMPDIR:-/tmp}/quire-oracle.XXXXXX")

echo "oracle: recording seeds $base-$last from yjs into $dir"
if ! node crdt/oracle/gen.mjs --out "$dir" --seeds "$base-$last" >"$dir/gen.log" 2>&1; then
	cat "$dir/gen.log"
	echo "oracle: the generator failed (recordings kept in $dir)"
	exit 1
fi
variant=$(grep -c 'state order-invariant: false' "$dir/gen.log" || true)
echo "oracle: $variant of $n seeds end in an encoded state that depends on the order (GC runs); each order has its own expected state"

if QUIRE_ORACLE_DIR="$dir" QUIRE_REVERSE_BASE="$base" go test -run 'Differential|Reverse' -count=1 ./crdt/; then
	rm -rf "$dir"
	echo "oracle: $n fresh seeds agree with yjs"
else
	echo "oracle: FAILED; recordings kept in $dir"
	echo "  re-run:      QUIRE_ORACLE_DIR=$dir QUIRE_REVERSE_BASE=$base go test -run 'Differential|Reverse' -count=1 ./crdt/"
	echo "  re-generate: ORACLE_BASE=$base ORACLE_SEEDS=$n bash crdt/oracle/live.sh"
	exit 1
fi
