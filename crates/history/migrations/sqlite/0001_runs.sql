-- The run history (SQLite). Kept in step with migrations/postgres: the same
-- tables and columns, only the id column's syntax differs.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_ms BIGINT NOT NULL,
    ended_ms BIGINT NOT NULL,
    script TEXT NOT NULL,
    script_hash TEXT NOT NULL,
    host TEXT NOT NULL,
    profile TEXT NOT NULL,
    users BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    rps DOUBLE PRECISION NOT NULL,
    p95_ms DOUBLE PRECISION NOT NULL,
    verdict TEXT NOT NULL,
    checks TEXT NOT NULL,
    intervals TEXT NOT NULL
);
CREATE INDEX runs_by_script ON runs (script, id);

CREATE TABLE run_entries (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    method TEXT NOT NULL,
    name TEXT NOT NULL,
    requests BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    avg_ms DOUBLE PRECISION NOT NULL,
    min_ms DOUBLE PRECISION NOT NULL,
    max_ms DOUBLE PRECISION NOT NULL,
    p50_ms DOUBLE PRECISION NOT NULL,
    p95_ms DOUBLE PRECISION NOT NULL,
    p99_ms DOUBLE PRECISION NOT NULL,
    rps DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, position)
);
