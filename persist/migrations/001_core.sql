-- 001: documents, their append-only update log and their snapshots.
-- Times are Unix nanoseconds (UTC). STRICT: a wrong type is an error, not a
-- silent conversion.
--
-- Every Append rewrites its docs row and adds an updates row, so the pages a
-- commit writes to the WAL are what this schema is shaped by: both tables
-- are WITHOUT ROWID (the primary key IS the table: one B-tree each instead
-- of a table plus its key's index), and docs has no index on updated_at
-- (it changes on every Append; ListDocs sorts instead). Measured from the
-- WAL's growth: 2 pages per single-append commit, against 4 for rowid tables
-- with that index.

CREATE TABLE docs (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- seq of the last update ever appended; seqs are per document and never
    -- reused, even after compaction deleted the rows.
    last_seq   INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

-- One row per committed update, in commit order per document. The key
-- serves both Load (seq > through) and Compact (seq <= through). Rows are
-- mostly keystroke-sized; the rare large one (a paste, an imported
-- document) goes to overflow pages and is folded into a snapshot soon.
CREATE TABLE updates (
    doc_id TEXT    NOT NULL REFERENCES docs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    data   BLOB    NOT NULL,
    PRIMARY KEY (doc_id, seq)
) STRICT, WITHOUT ROWID;

-- At most one snapshot per document: its full state as one v1 update,
-- covering every update with seq <= through_seq (those rows are deleted in
-- the transaction that writes the snapshot). A rowid table: snapshots are
-- large, and WITHOUT ROWID suits small rows.
CREATE TABLE snapshots (
    doc_id      TEXT    NOT NULL PRIMARY KEY REFERENCES docs (id) ON DELETE CASCADE,
    through_seq INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
