-- Notifications (mrod/notify): a contact address per user — the domain owner who is told
-- about their own domains — the conditions each node has seen and told, and every message sent.

ALTER TABLE user ADD COLUMN email TEXT;

-- A condition an event source reported at this node's last round (kind + subject, e.g.
-- relay_down + the relay's name): while it lasts the row stays; when a round no longer reports
-- it, a "resolved" notice goes out and the row goes. notified_at: when it was last told
-- (one notice per kind and subject per [notify] repeat), so a restart does not tell it again.
-- source: the event source that reported it (a source that fails keeps its rows as they are).
CREATE TABLE notify_state (
    node        TEXT NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    text        TEXT NOT NULL,
    domains     TEXT NOT NULL,
    resolved    TEXT NOT NULL,
    since       TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    notified_at TEXT,
    PRIMARY KEY (node, kind, subject)
);

-- One message to one recipient through one channel: a digest of a round's events (or one
-- event, or a test), its delivery state and retries with backoff.
CREATE TABLE notification (
    id              INTEGER PRIMARY KEY,
    node            TEXT NOT NULL,
    at              TEXT NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'retrying', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    delivered_at    TEXT,
    title           TEXT NOT NULL,
    payload         TEXT NOT NULL
);
CREATE INDEX notification_at ON notification (at);
CREATE INDEX notification_due ON notification (status, next_attempt_at);
