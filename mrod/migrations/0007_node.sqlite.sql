-- Readings that depend on the node (its Postfix queue, its network view) are
-- kept per node, under [node] name. Rows from before this migration get node '' and are
-- replaced by the node's next reading. SQLite cannot change a primary key in place, so the
-- three keyed tables are rebuilt (PostgreSQL alters them: 0007_node.postgresql.sql).

CREATE TABLE queue_stat_new (
    node          TEXT NOT NULL DEFAULT '',
    domain_id     INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    messages      INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    oldest        INTEGER,
    last_reason   TEXT,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (node, domain_id)
);
INSERT INTO queue_stat_new (domain_id, messages, bytes, oldest, last_reason, updated_at)
    SELECT domain_id, messages, bytes, oldest, last_reason, updated_at FROM queue_stat;
DROP TABLE queue_stat;
ALTER TABLE queue_stat_new RENAME TO queue_stat;

CREATE TABLE relay_health_new (
    node          TEXT NOT NULL DEFAULT '',
    relay_id      INTEGER NOT NULL REFERENCES relay(id) ON DELETE CASCADE,
    state         TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'up', 'down')),
    since         TEXT,
    ok_streak     INTEGER NOT NULL DEFAULT 0,
    fail_streak   INTEGER NOT NULL DEFAULT 0,
    last_probe_at TEXT,
    last_ok       INTEGER,
    last_latency_ms REAL,
    last_detail   TEXT,
    starttls      INTEGER,
    PRIMARY KEY (node, relay_id)
);
INSERT INTO relay_health_new (relay_id, state, since, ok_streak, fail_streak, last_probe_at, last_ok,
                              last_latency_ms, last_detail, starttls)
    SELECT relay_id, state, since, ok_streak, fail_streak, last_probe_at, last_ok, last_latency_ms,
           last_detail, starttls FROM relay_health;
DROP TABLE relay_health;
ALTER TABLE relay_health_new RENAME TO relay_health;

CREATE TABLE domain_check_new (
    node       TEXT NOT NULL DEFAULT '',
    domain_id  INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('ok', 'warning', 'error')),
    findings   TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    PRIMARY KEY (node, domain_id)
);
INSERT INTO domain_check_new (domain_id, status, findings, checked_at)
    SELECT domain_id, status, findings, checked_at FROM domain_check;
DROP TABLE domain_check;
ALTER TABLE domain_check_new RENAME TO domain_check;

-- Probe history: no key to change, a column and the index each node's reads use.
ALTER TABLE health_probe ADD COLUMN node TEXT NOT NULL DEFAULT '';
DROP INDEX health_probe_relay_at;
CREATE INDEX health_probe_relay_at ON health_probe (node, relay_id, at);

-- A flush asked for on one node (the panel's) of mail another node holds: that node's queue
-- job takes its rows, flushes (postqueue -s) and deletes them.
CREATE TABLE flush_request (
    id           INTEGER PRIMARY KEY,
    node         TEXT NOT NULL,
    domain_id    INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    requested_at TEXT NOT NULL,
    requested_by TEXT NOT NULL
);
CREATE INDEX flush_request_node ON flush_request (node);
