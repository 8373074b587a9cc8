-- Reference datasets uploaded once and kept as summaries (never as raw rows).
CREATE TABLE baselines (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE baseline_summaries (
    name TEXT NOT NULL REFERENCES baselines (name) ON DELETE CASCADE,
    class TEXT NOT NULL,
    feature TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (name, class, feature)
) WITHOUT ROWID;

-- One row per (job, window): rerunning a window replaces its row and its results.
CREATE TABLE job_runs (
    job TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    fired_at INTEGER NOT NULL,
    started_at_us INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (job, window_end)
) WITHOUT ROWID;

-- What jobs computed, per (job, model, subject, window). data: JSON.
CREATE TABLE results (
    job TEXT NOT NULL,
    model TEXT NOT NULL,
    subject TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job, model, subject, window_end)
) WITHOUT ROWID;
CREATE INDEX results_model_time ON results (model, window_end);

-- Leases: one runner of a job at a time, across processes and replicas.
CREATE TABLE leases (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at_us INTEGER NOT NULL
);
