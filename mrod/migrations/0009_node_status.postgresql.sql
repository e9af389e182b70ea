-- Each node's lookupd sync status (see 0009_node_status.sqlite.sql, the same
-- table). Spelled for PostgreSQL as the shared files are translated (INTEGER → BIGINT).
CREATE TABLE node_status (
    node              TEXT NOT NULL PRIMARY KEY,
    lookupd_synced_at TEXT,
    lookupd_connected BIGINT CHECK (lookupd_connected IN (0, 1)),
    reported_at       TEXT NOT NULL
);
