-- The admin panel: server-side sessions, API tokens, login throttling and its blocklist,
-- and indexes that keep the domain list fast when sorted or filtered with many domains.

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a
-- copy of the database does not sign anyone in. The CSRF token is bound to the session.
CREATE TABLE session (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    remote      TEXT,
    user_agent  TEXT,
    -- JSON list of [category, message] shown once on the next page
    flash       TEXT
);
CREATE INDEX session_user ON session (user_id);
CREATE INDEX session_expires ON session (expires_at);

-- A bearer token for the JSON API, shown once at creation; only its SHA-256 is stored.
CREATE TABLE api_token (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    -- the first characters of the token, to tell tokens apart in lists
    prefix         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    last_used_at   TEXT,
    last_used_from TEXT,
    revoked_at     TEXT
);
CREATE INDEX api_token_user ON api_token (user_id);

-- Failed sign-ins, by address and by the user name typed (known or not: no enumeration).
CREATE TABLE login_failure (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    remote   TEXT NOT NULL,
    username TEXT NOT NULL COLLATE NOCASE
);
CREATE INDEX login_failure_remote ON login_failure (remote, at);
CREATE INDEX login_failure_username ON login_failure (username, at);
CREATE INDEX login_failure_at ON login_failure (at);

-- Active and past blocks; a block ends at `until` or when lifted on the blocklist page.
CREATE TABLE login_block (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('ip', 'user')),
    value      TEXT NOT NULL COLLATE NOCASE,
    created_at TEXT NOT NULL,
    until      TEXT NOT NULL,
    failures   INTEGER NOT NULL,
    lifted_at  TEXT,
    lifted_by  TEXT
);
CREATE INDEX login_block_value ON login_block (kind, value, until);

-- The domain list sorts and filters on these (name has its UNIQUE index already).
CREATE INDEX domain_enabled_name ON domain (enabled, name);
CREATE INDEX domain_source_name ON domain (source, name);
CREATE INDEX domain_recipients_name ON domain (recipients, name);
-- (with the name: the list breaks ties by name, so the index serves the whole ORDER BY)
CREATE INDEX domain_created ON domain (created_at, name);
CREATE INDEX domain_updated ON domain (updated_at, name);
CREATE INDEX domain_relay_name ON domain (relay_id, name);
CREATE INDEX domain_owner_name ON domain (owner_id, name);
