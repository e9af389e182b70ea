-- Whether each node's last reading of Postfix's queue worked: a reading that failed (postqueue
-- missing, Postfix not configured, too slow) or never happened must not look like an empty
-- queue, so the panel shows it where the figures would be. One row per node: when the queue was
-- last read, and — while the latest attempt fails — when it failed and why (mrod.operations.queuereading).
CREATE TABLE queue_reading (
    node      TEXT NOT NULL PRIMARY KEY,
    read_at   TEXT,
    failed_at TEXT,
    error     TEXT
);
