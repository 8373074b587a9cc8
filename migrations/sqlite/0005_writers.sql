-- Ingest writers: each process that appends to the journal registers one and owns its rows.
-- folded_upto: the writer's rows up to this seq are folded into summaries (deleted later in
-- small steps); heartbeat_us: refreshed at each checkpoint; a writer whose heartbeat is stale is
-- taken over (its unfolded rows re-appended by another writer).
CREATE TABLE writers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    folded_upto INTEGER NOT NULL DEFAULT 0,
    heartbeat_us INTEGER NOT NULL
);
-- Rows written before writers existed belong to one writer with the old global watermark.
INSERT INTO writers (id, name, folded_upto, heartbeat_us)
    SELECT 1, 'before-writers', value, 0 FROM meta
    WHERE key = 'journal_folded_upto' AND EXISTS (SELECT 1 FROM journal);
CREATE TABLE journal_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    writer INTEGER NOT NULL REFERENCES writers (id),
    received_at INTEGER NOT NULL,
    payload BLOB NOT NULL
);
INSERT INTO journal_new (seq, writer, received_at, payload)
    SELECT seq, 1, received_at, payload FROM journal;
DROP TABLE journal;
ALTER TABLE journal_new RENAME TO journal;
CREATE INDEX journal_writer ON journal (writer, seq);
DELETE FROM meta WHERE key = 'journal_folded_upto';
-- Deployment settings recorded on first start (the pseudonymisation key's fingerprint).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
