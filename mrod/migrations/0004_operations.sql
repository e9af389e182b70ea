-- Operating a backup MX: per-domain pause and queue quota, recipient verification
-- (callout cache), queue statistics for the quota, primary health, DNS check results.

ALTER TABLE domain ADD COLUMN paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1));
ALTER TABLE domain ADD COLUMN pause_reason TEXT;
-- NULL: the [policy] default; 0: no limit.
ALTER TABLE domain ADD COLUMN quota_messages INTEGER CHECK (quota_messages IS NULL OR quota_messages >= 0);
ALTER TABLE domain ADD COLUMN quota_bytes INTEGER CHECK (quota_bytes IS NULL OR quota_bytes >= 0);
-- For recipient policy 'verify': what to do with an unknown recipient while the primary is down.
ALTER TABLE domain ADD COLUMN verify_when_down TEXT NOT NULL DEFAULT 'accept'
    CHECK (verify_when_down IN ('accept', 'defer'));

-- Results of SMTP callouts to primaries (RCPT TO), by casefolded address without extension.
CREATE TABLE verify_cache (
    address    TEXT PRIMARY KEY,
    valid      INTEGER NOT NULL CHECK (valid IN (0, 1)),
    detail     TEXT,
    checked_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;

-- Mail waiting in Postfix's queue per domain row (aggregated from `postqueue -j`).
CREATE TABLE queue_stat (
    domain_id     INTEGER PRIMARY KEY REFERENCES domain(id) ON DELETE CASCADE,
    messages      INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    oldest        INTEGER,
    last_reason   TEXT,
    updated_at    TEXT NOT NULL
);

-- Current state of each primary, with hysteresis counters.
CREATE TABLE relay_health (
    relay_id      INTEGER PRIMARY KEY REFERENCES relay(id) ON DELETE CASCADE,
    state         TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'up', 'down')),
    since         TEXT,
    ok_streak     INTEGER NOT NULL DEFAULT 0,
    fail_streak   INTEGER NOT NULL DEFAULT 0,
    last_probe_at TEXT,
    last_ok       INTEGER,
    last_latency_ms REAL,
    last_detail   TEXT,
    starttls      INTEGER
);

-- Probe history (pruned by age).
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY,
    relay_id   INTEGER NOT NULL REFERENCES relay(id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    ok         INTEGER NOT NULL,
    latency_ms REAL,
    starttls   INTEGER,
    detail     TEXT
);
CREATE INDEX health_probe_relay_at ON health_probe (relay_id, at);

-- Latest DNS check of each domain: status ok / warning / error, findings as JSON.
CREATE TABLE domain_check (
    domain_id  INTEGER PRIMARY KEY REFERENCES domain(id) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('ok', 'warning', 'error')),
    findings   TEXT NOT NULL,
    checked_at TEXT NOT NULL
);
