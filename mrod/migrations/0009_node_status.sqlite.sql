-- Each node's lookupd sync status, so every node's panel and `mrod health
-- --all-nodes` show how stale each node's routing snapshot is. A node's `mrod serve` copies its
-- lookupd's status file (mrod.operations.syncstatus) here every few seconds
-- (mrod.operations.nodereports); a node cut off from the database stops reporting, and its row
-- ages — which is what the others see. Times are stored timestamps (UTC, to the second).
-- Same table as 0009_node_status.postgresql.sql.
CREATE TABLE node_status (
    node              TEXT NOT NULL PRIMARY KEY,
    lookupd_synced_at TEXT,
    lookupd_connected INTEGER CHECK (lookupd_connected IN (0, 1)),
    reported_at       TEXT NOT NULL
);
