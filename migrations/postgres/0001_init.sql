-- flywheel on PostgreSQL: the same tables as the SQLite store (see migrations/sqlite), plus the
-- shared deduplication table; several replicas write to one database.

-- Ingest writers (one per replica process). folded_upto: the writer's journal rows up to this seq
-- are folded into the summaries; heartbeat_at: refreshed at each checkpoint by the database's
-- clock. A writer whose heartbeat is older than storage.writer_ttl_secs is taken over.
CREATE TABLE writers (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    folded_upto BIGINT NOT NULL DEFAULT 0,
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Accepted batches, durable before the 200 answer; folded at checkpoints, then deleted.
-- payload: postcard-encoded events (pseudonymised; no raw user ids).
CREATE TABLE journal (
    seq BIGSERIAL PRIMARY KEY,
    writer BIGINT NOT NULL REFERENCES writers (id),
    received_at BIGINT NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX journal_writer ON journal (writer, seq);

-- Event-id hashes (XXH3-64) seen within the dedup horizon, shared by every replica.
CREATE TABLE event_ids (
    id BIGINT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE INDEX event_ids_seen_at ON event_ids (seen_at);

CREATE TABLE summaries (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    class TEXT NOT NULL,
    name TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (model, version, class, bucket, name)
);

CREATE TABLE event_counts (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    event_type TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    n BIGINT NOT NULL,
    first_us BIGINT NOT NULL,
    last_us BIGINT NOT NULL,
    PRIMARY KEY (model, version, event_type, bucket)
);

CREATE TABLE records (
    event_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at_us BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX records_model_time ON records (model, event_type, occurred_at_us);

CREATE TABLE funnel_counts (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (model, version, stage, reason, bucket)
);

CREATE TABLE user_activity (
    model TEXT NOT NULL,
    day BIGINT NOT NULL,
    user_key BIGINT NOT NULL,
    PRIMARY KEY (model, day, user_key)
);

CREATE TABLE dedup_chunks (
    chunk BIGSERIAL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    ids BYTEA NOT NULL
);

CREATE TABLE baselines (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE baseline_summaries (
    name TEXT NOT NULL REFERENCES baselines (name) ON DELETE CASCADE,
    class TEXT NOT NULL,
    feature TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (name, class, feature)
);

CREATE TABLE job_runs (
    job TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    started_at_us BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (job, window_end)
);
CREATE INDEX job_runs_started ON job_runs (started_at_us);

CREATE TABLE results (
    job TEXT NOT NULL,
    model TEXT NOT NULL,
    subject TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job, model, subject, window_end)
);
CREATE INDEX results_model_time ON results (model, window_end);
CREATE INDEX results_time ON results (window_end);

-- One runner of a job at a time across replicas; expiry by the database's clock.
CREATE TABLE leases (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE alerts (
    id BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    hits BIGINT NOT NULL,
    clean BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    starts_at_us BIGINT,
    ends_at_us BIGINT,
    updated_at_us BIGINT NOT NULL,
    notified_at_us BIGINT
);
CREATE INDEX alerts_active ON alerts (state, fingerprint);
CREATE INDEX alerts_updated ON alerts (updated_at_us);

-- Deployment settings recorded on first start (the pseudonymisation key's fingerprint).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
