//go:build !unix

package persist

import "os"

// lockFile is a no-op where flock is not available: one process per
// database is then the operator's to ensure.
func lockFile(string) (*os.File, error) { return nil, nil }
