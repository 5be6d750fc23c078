package persist_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quirehq/quire/persist"
)

// A document's life in the store: updates appended as they are committed,
// a snapshot replacing the log once it has grown, and a load that gives the
// snapshot plus what came after it.
func Example() {
	dir, err := os.MkdirTemp("", "quire-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := persist.OpenSQLite(filepath.Join(dir, "data", "quire.db"), persist.SQLiteOptions{})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	for _, u := range []string{"u1", "u2", "u3"} {
		res, err := s.Append(ctx, "notes", []byte(u))
		if err != nil {
			panic(err)
		}
		fmt.Printf("seq %d, log %d rows\n", res.Seq, res.LogLen)
	}
	// The room encodes its state through seq 2 and stores it.
	if err := s.Compact(ctx, "notes", []byte("state@2"), 2); err != nil {
		panic(err)
	}
	l, err := s.Load(ctx, "notes")
	if err != nil {
		panic(err)
	}
	fmt.Printf("snapshot %q, then %q, last seq %d\n", l.Snapshot, l.Updates, l.LastSeq)
	// Output:
	// seq 1, log 1 rows
	// seq 2, log 2 rows
	// seq 3, log 3 rows
	// snapshot "state@2", then ["u3"], last seq 3
}
