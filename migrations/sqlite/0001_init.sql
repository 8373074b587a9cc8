-- Accepted batches, durable before the 200 answer; folded into summaries at checkpoints and then
-- deleted. payload: postcard-encoded Vec<Event> (pseudonymised; no raw user ids).
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    payload BLOB NOT NULL
);

-- Mergeable summaries per (model, version, class, name, time bucket). data: postcard FeatureSummary.
CREATE TABLE summaries (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    class TEXT NOT NULL,
    name TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (model, version, class, bucket, name)
) WITHOUT ROWID;

CREATE TABLE event_counts (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    event_type TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    PRIMARY KEY (model, version, event_type, bucket)
) WITHOUT ROWID;

-- model_eval and deploy events, kept whole (small, few).
CREATE TABLE records (
    event_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at_us INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX records_model_time ON records (model, event_type, occurred_at_us);

CREATE TABLE funnel_counts (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (model, version, stage, reason, bucket)
) WITHOUT ROWID;

-- Per-day activity of pseudonymous users (8-byte HMAC prefix), for retention. Purged after TTL.
CREATE TABLE user_activity (
    model TEXT NOT NULL,
    day INTEGER NOT NULL,
    user_key INTEGER NOT NULL,
    PRIMARY KEY (model, day, user_key)
) WITHOUT ROWID;

-- Event-id hashes seen since `created_at` (sorted u64 little-endian), for the dedup horizon.
CREATE TABLE dedup_chunks (
    chunk INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    ids BLOB NOT NULL
);
