-- 001: documents, their append-only update log and their snapshots.
-- Times are Unix nanoseconds (UTC). STRICT: a wrong type is an error, not a
-- silent conversion.

CREATE TABLE docs (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- seq of the last update ever appended; seqs are per document and never
    -- reused, even after compaction deleted the rows.
    last_seq   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- ListDocs orders by updated_at, newest first.
CREATE INDEX docs_updated_at ON docs (updated_at DESC, id);

-- One row per committed update, in commit order per document. The primary
-- key's index serves both Load (seq > through) and Compact (seq <= through).
CREATE TABLE updates (
    doc_id TEXT    NOT NULL REFERENCES docs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    data   BLOB    NOT NULL,
    PRIMARY KEY (doc_id, seq)
) STRICT;

-- At most one snapshot per document: its full state as one v1 update,
-- covering every update with seq <= through_seq (those rows are deleted in
-- the transaction that writes the snapshot).
CREATE TABLE snapshots (
    doc_id      TEXT    NOT NULL PRIMARY KEY REFERENCES docs (id) ON DELETE CASCADE,
    through_seq INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
