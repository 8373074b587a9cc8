-- Erasure requests (DELETE /v1/users/{id}, `flywheel users erase`): the user's pseudonym (the
-- HMAC of the raw id with the deployment key; the raw id is never stored) and when it was
-- erased. Checkpoints of every replica consult it so that activity folded later from events of
-- that user up to the erasure (another replica's journal, an adopted journal) is not stored again.
CREATE TABLE erasures (
    user_key BIGINT PRIMARY KEY,
    erased_at_us BIGINT NOT NULL
);
-- What was done to personal data, without identifying anyone: action, when, and counts.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at_us BIGINT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
