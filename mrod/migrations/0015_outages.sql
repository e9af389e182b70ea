-- Outage history, domain holds, the circuit breaker's trips, and mail the primary refused
-- after the backup accepted it (issues 21.2, 21.4, 20.3).

-- Every outage of a primary as one node saw it (mrod.operations.outages): from its transition
-- to down to its transition back to up; queued_max is the most messages its domains had
-- waiting in that node's queue meanwhile; flushed_at when they were all gone after its return.
CREATE TABLE relay_outage (
    id          INTEGER PRIMARY KEY,
    node        TEXT NOT NULL,
    relay_id    INTEGER NOT NULL REFERENCES relay(id) ON DELETE CASCADE,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    queued_max  INTEGER NOT NULL DEFAULT 0,
    flushed_at  TEXT
);
CREATE INDEX relay_outage_relay ON relay_outage (relay_id, node, started_at);

-- A domain whose queued mail is kept on hold (postsuper -h), by hand or by the circuit
-- breaker (reason 'manual' | 'breaker'): shared by every node; each node holds its own queue.
-- A row with reason 'breaker' is the breaker's tripped state (mrod.operations.carefulflush).
CREATE TABLE domain_hold (
    domain_id  INTEGER PRIMARY KEY REFERENCES domain(id) ON DELETE CASCADE,
    reason     TEXT NOT NULL CHECK (reason IN ('manual', 'breaker')),
    held_at    TEXT NOT NULL,
    held_by    TEXT NOT NULL,
    node       TEXT NOT NULL DEFAULT '',
    detail     TEXT
);

-- The messages mrod put on hold in a node's queue, so a release gives back those and never
-- mail an operator held with postsuper by hand.
CREATE TABLE held_message (
    node       TEXT NOT NULL,
    queue_id   TEXT NOT NULL,
    domain_id  INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    held_at    TEXT NOT NULL,
    PRIMARY KEY (node, queue_id)
);

-- Mail this node accepted that the primary then refused with 5xx (read from Postfix's log,
-- mrod.operations.deliveries): the recipient list drifting from the primary's.
CREATE TABLE primary_refusal (
    node        TEXT NOT NULL,
    domain_id   INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    refused     INTEGER NOT NULL DEFAULT 0,
    last_at     TEXT,
    last_detail TEXT,
    PRIMARY KEY (node, domain_id)
);
