-- Core entities: users (owners), relays, domains, recipients, audit.

CREATE TABLE user (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE permission (
    user_id INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    name    TEXT NOT NULL CHECK (name IN ('usermgr', 'domains', 'domains_own', 'relay',
                                          'relay_own', 'logs', 'blocklist', 'queue')),
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

CREATE TABLE relay (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    host       TEXT NOT NULL,
    port       INTEGER NOT NULL DEFAULT 25 CHECK (port BETWEEN 1 AND 65535),
    protocol   TEXT NOT NULL DEFAULT 'smtp' CHECK (protocol IN ('smtp', 'smtps')),
    tls        TEXT NOT NULL DEFAULT 'may' CHECK (tls IN ('may', 'encrypt', 'verify', 'secure')),
    owner_id   INTEGER REFERENCES user(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX relay_nexthop ON relay (host, port);

-- A domain is routed by its relay (relay_id), by its own host/port/protocol/tls override
-- (host), or by its own MX records (neither). `route` records how that was decided.
CREATE TABLE domain (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    relay_id           INTEGER REFERENCES relay(id) ON DELETE RESTRICT,
    host               TEXT,
    port               INTEGER CHECK (port IS NULL OR port BETWEEN 1 AND 65535),
    protocol           TEXT CHECK (protocol IS NULL OR protocol IN ('smtp', 'smtps')),
    tls                TEXT CHECK (tls IS NULL OR tls IN ('may', 'encrypt', 'verify', 'secure')),
    route              TEXT NOT NULL DEFAULT 'relay'
                       CHECK (route IN ('relay', 'dns-txt', 'dns-dom', 'dns-sub')),
    enabled            INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    include_subdomains INTEGER NOT NULL DEFAULT 0 CHECK (include_subdomains IN (0, 1)),
    recipients         TEXT NOT NULL DEFAULT 'accept_all'
                       CHECK (recipients IN ('accept_all', 'listed', 'verify')),
    source             TEXT NOT NULL DEFAULT 'manual'
                       CHECK (source IN ('manual', 'api', 'bind', 'catalog')),
    owner_id           INTEGER REFERENCES user(id) ON DELETE SET NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    CHECK (relay_id IS NULL OR host IS NULL),
    CHECK (host IS NOT NULL OR (port IS NULL AND protocol IS NULL))
);
CREATE INDEX domain_relay ON domain (relay_id);
CREATE INDEX domain_nexthop ON domain (host, port) WHERE host IS NOT NULL;
CREATE INDEX domain_owner ON domain (owner_id);

-- Accepted recipients of `listed` domains: 'local@domain' or '@domain' (catch-all),
-- casefolded, the domain part an A-label.
CREATE TABLE recipient (
    id         INTEGER PRIMARY KEY,
    domain_id  INTEGER NOT NULL REFERENCES domain(id) ON DELETE CASCADE,
    address    TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX recipient_domain ON recipient (domain_id);

-- Who changed what, when, from where. before/after are JSON objects (NULL for add/remove).
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    origin     TEXT NOT NULL,
    remote     TEXT,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_key TEXT,
    before     TEXT,
    after      TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_entity ON audit (entity, entity_key);
