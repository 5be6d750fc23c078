package persist

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// openRaw opens a database file without OpenSQLite, to build old schemas.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn(path, url.Values{"_journal_mode": {"WAL"}, "_foreign_keys": {"on"}}))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations, want at least 2", len(ms))
	}
	for i, m := range ms {
		if m.version != i+1 || strings.TrimSpace(m.sql) == "" {
			t.Errorf("migration %d: version %d, %d bytes of SQL", i, m.version, len(m.sql))
		}
	}
}

// A database written at schema version 1 (no per-document counters) is
// migrated on open: the counters are backfilled from its rows and its data
// loads and grows as if it had always been at the current version.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	db := openRaw(t, path)
	if err := migrate(ctx, db, ms[:1]); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO docs (id, name, created_at, updated_at, last_seq) VALUES
			('a', 'Doc A', 1000, 5000, 5), ('b', '', 2000, 3000, 2), ('c', 'empty', 4000, 4000, 0)`,
		`INSERT INTO snapshots (doc_id, through_seq, data, created_at) VALUES ('a', 3, x'0102030405', 4500)`,
		`INSERT INTO updates (doc_id, seq, data) VALUES
			('a', 4, CAST('four' AS BLOB)), ('a', 5, CAST('five!' AS BLOB)),
			('b', 1, CAST('b1' AS BLOB)), ('b', 2, CAST('b2b2' AS BLOB))`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("write version-1 rows: %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTestSQLite(t, path, SQLiteOptions{})
	var versions []int
	rows, err := s.r.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	rows.Close()
	if len(versions) != len(ms) || versions[len(versions)-1] != len(ms) {
		t.Errorf("schema_migrations = %v, want 1..%d", versions, len(ms))
	}

	for _, c := range []struct {
		id     string
		name   string
		bytes  int64
		logLen int
	}{
		{"a", "Doc A", 5 + 4 + 5, 2},
		{"b", "", 2 + 4, 2},
		{"c", "empty", 0, 0},
	} {
		m := mustGet(t, s, c.id)
		if m.Name != c.name || m.Bytes != c.bytes || m.LogLen != c.logLen {
			t.Errorf("%s after migration: %+v, want name %q, bytes %d, log len %d", c.id, m, c.name, c.bytes, c.logLen)
		}
	}
	checkLoaded(t, mustLoad(t, s, "a"), []byte{1, 2, 3, 4, 5}, [][]byte{[]byte("four"), []byte("five!")}, 5)
	if r := mustAppend(t, s, "a", []byte("six")); r != (AppendResult{Seq: 6, LogLen: 3, LogBytes: 4 + 5 + 3}) {
		t.Errorf("Append after migration = %+v", r)
	}
	docs, err := s.ListDocs(ctx)
	if err != nil || len(docs) != 3 || docs[0].ID != "a" || docs[1].ID != "c" || docs[2].ID != "b" {
		t.Errorf("ListDocs after migration = %+v, %v; want a, c, b", docs, err)
	}
}

// A database from a newer binary is refused, and left as it was.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s := openTestSQLite(t, path, SQLiteOptions{})
	mustAppend(t, s, "d", []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := openRaw(t, path)
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '999_future', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenSQLite(path, SQLiteOptions{}); err == nil {
		_ = s.Close()
		t.Fatal("OpenSQLite accepted schema version 999")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

// Opening an up-to-date database applies nothing and changes nothing.
func TestMigrateIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	for range 3 {
		s, err := OpenSQLite(path, SQLiteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db := openRaw(t, path)
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	ms, _ := loadMigrations()
	if n != len(ms) {
		t.Errorf("schema_migrations has %d rows after 3 opens, want %d", n, len(ms))
	}
}
