-- Journal rows up to `value` are folded into summaries (set in the checkpoint transaction);
-- they are deleted later in small steps, so that a checkpoint never waits on a large delete.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('journal_folded_upto', 0);
