-- Journal payloads are compact binary rows that live only until the next checkpoint folds them.
-- Compressing them (pglz, the TOAST default) cost PostgreSQL more CPU than anything else on the
-- ingest path: stored out of line and uncompressed, one replica's ingest went from about 101k to
-- 121k events/s on the benchmark machine (BENCHMARKS.md).
ALTER TABLE journal ALTER COLUMN payload SET STORAGE EXTERNAL;
