-- Recipient sources (mrod.recipientsources): recipient lists synced from a primary's own
-- directory — LDAP, an SQL query on its mail database, or a URL returning JSON/CSV.

-- One row per source: how to read it (never a password: password_file names a file the sync
-- reads; url never carries userinfo), and how its last syncs went. Other features read the
-- state columns (the notifications' "source failing" event): error and failing_since are set
-- while the source fails or a result is held for safety, NULL once a sync is applied.
CREATE TABLE recipient_source (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    kind          TEXT NOT NULL CHECK (kind IN ('ldap', 'sql', 'url')),
    url           TEXT NOT NULL,
    base          TEXT,                  -- ldap: the search base
    filter        TEXT,                  -- ldap: the search filter
    attributes    TEXT,                  -- ldap: attribute names, comma-separated
    starttls      INTEGER NOT NULL DEFAULT 0 CHECK (starttls IN (0, 1)),
    ca_file       TEXT,                  -- ldap/url: CA bundle that verifies the server
    bind_dn       TEXT,                  -- ldap
    query         TEXT,                  -- sql: one query whose first column is an address
    format        TEXT CHECK (format IS NULL OR format IN ('json', 'csv')),   -- url
    password_file TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    -- The last attempt (synced_at) and the last applied result (ok_at, addresses, ignored:
    -- addresses of domains this source does not feed, domain_counts: JSON {domain: count}).
    synced_at     TEXT,
    ok_at         TEXT,
    addresses     INTEGER,
    ignored       INTEGER,
    domain_counts TEXT,
    error         TEXT,
    failing_since TEXT,
    -- 1: the last result was refused for safety (empty, or removing too much) and waits for
    -- an operator (`mrod recipient-source accept`); accept_next: apply the next result as it is.
    pending       INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)),
    accept_next   INTEGER NOT NULL DEFAULT 0 CHECK (accept_next IN (0, 1)),
    -- Several nodes: the node syncing this source now, until when (a lease, so one node syncs).
    claim_node    TEXT,
    claim_until   TEXT
);

-- Which domains a source feeds: a domain's own choice (source_id NULL: none, even when its
-- relay has a source), else its relay's.
CREATE TABLE recipient_source_domain (
    domain_id INTEGER PRIMARY KEY REFERENCES domain(id) ON DELETE CASCADE,
    source_id INTEGER REFERENCES recipient_source(id) ON DELETE CASCADE
);
CREATE TABLE recipient_source_relay (
    relay_id  INTEGER PRIMARY KEY REFERENCES relay(id) ON DELETE CASCADE,
    source_id INTEGER NOT NULL REFERENCES recipient_source(id) ON DELETE CASCADE
);

-- A recipient a sync wrote carries its source (NULL: added by hand); a sync replaces only its
-- own rows. Removing a source keeps its rows as hand-added ones.
ALTER TABLE recipient ADD COLUMN source_id INTEGER REFERENCES recipient_source(id) ON DELETE SET NULL;
CREATE INDEX recipient_source_rows ON recipient (source_id, domain_id);
