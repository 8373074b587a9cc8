-- The service's own alerts: one row per incident (pending -> firing -> resolved).
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    hits INTEGER NOT NULL,
    clean INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    starts_at_us INTEGER,
    ends_at_us INTEGER,
    updated_at_us INTEGER NOT NULL,
    notified_at_us INTEGER
);
CREATE INDEX alerts_active ON alerts (state, fingerprint);
CREATE INDEX alerts_updated ON alerts (updated_at_us);
