-- MTA-STS (RFC 8461) and DANE (RFC 7672) of the domains routed by their own MX records
-- (mrod/mtasts): one row per destination domain, shared by every node of a cluster, written by
-- the refresh job of `mrod serve` (mrod/mtasts/cache.py owns the writes). lookupd answers
-- tls_policy for such a domain from `answer` (the finished Postfix policy, e.g.
-- `secure match=.example.net servername=hostname` or `dane`; NULL: nothing beyond the
-- domain's own TLS setting), so a change of `answer` writes a journal row for the domain, as a
-- change of the domain itself does (migration 0005).
--
-- A policy that cannot be fetched again keeps the cached one until expires_at (fetched_at +
-- max_age, RFC 8461 §5): the failure is kept in `error`, the policy and answer stay.
CREATE TABLE mta_sts (
    domain     TEXT NOT NULL PRIMARY KEY,
    policy_id  TEXT,                        -- the `_mta-sts` TXT id of the cached policy
    mode       TEXT CHECK (mode IN ('enforce', 'testing', 'none')),
    mx         TEXT NOT NULL DEFAULT '',    -- the policy's mx patterns, one a line
    max_age    INTEGER,
    fetched_at TEXT,
    expires_at TEXT,
    dane       INTEGER NOT NULL DEFAULT 0 CHECK (dane IN (0, 1)),  -- TLSA under DNSSEC for every MX host
    answer     TEXT,
    checked_at TEXT,                        -- the last attempt (failed or not)
    error      TEXT                         -- why the last attempt failed; NULL when it worked
);

CREATE TRIGGER change_mta_sts_insert AFTER INSERT ON mta_sts WHEN NEW.answer IS NOT NULL
BEGIN
    INSERT INTO change (entity, key) VALUES ('domain', NEW.domain);
END;

CREATE TRIGGER change_mta_sts_update AFTER UPDATE OF answer ON mta_sts WHEN OLD.answer IS NOT NEW.answer
BEGIN
    INSERT INTO change (entity, key) VALUES ('domain', OLD.domain);
END;

CREATE TRIGGER change_mta_sts_delete AFTER DELETE ON mta_sts WHEN OLD.answer IS NOT NULL
BEGIN
    INSERT INTO change (entity, key) VALUES ('domain', OLD.domain);
END;
