-- 002: per-document counters, so that Append can return the log's length and
-- size (the room's compaction trigger) and GetDoc/ListDocs can report bytes
-- without scanning the log on every call. Existing rows are backfilled.

ALTER TABLE docs ADD COLUMN log_len        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE docs ADD COLUMN log_bytes      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE docs ADD COLUMN snapshot_bytes INTEGER NOT NULL DEFAULT 0;

UPDATE docs SET
    log_len        = (SELECT count(*) FROM updates u WHERE u.doc_id = docs.id),
    log_bytes      = (SELECT coalesce(sum(length(u.data)), 0) FROM updates u WHERE u.doc_id = docs.id),
    snapshot_bytes = coalesce((SELECT length(s.data) FROM snapshots s WHERE s.doc_id = docs.id), 0);
