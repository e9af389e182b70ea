-- The BIND importer: what an operator changed by hand on a domain (so an import never undoes
-- it), when an imported domain went missing from BIND, and the history of import runs.

-- JSON list of domain columns an operator (cli, panel, api) has changed; NULL: none.
ALTER TABLE domain ADD COLUMN manual_fields TEXT;
-- When an imported domain was first found missing from BIND (NULL: present).
ALTER TABLE domain ADD COLUMN missing_since TEXT;
-- 1 while the importer holds the domain disabled because it went missing; cleared when an
-- operator sets `enabled` by hand, so a returning zone re-enables only what the import disabled.
ALTER TABLE domain ADD COLUMN disabled_by_import INTEGER NOT NULL DEFAULT 0
    CHECK (disabled_by_import IN (0, 1));
CREATE INDEX domain_missing ON domain (missing_since) WHERE missing_since IS NOT NULL;

CREATE TABLE import_run (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    actor       TEXT NOT NULL,
    origin      TEXT NOT NULL,
    remote      TEXT,
    discovered  INTEGER NOT NULL DEFAULT 0,
    added       INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    disabled    INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    problems    INTEGER NOT NULL DEFAULT 0,
    -- why a failed run failed (FILE:LINE: message for a bad named.conf)
    error       TEXT,
    -- JSON list of per-domain problems and warnings
    messages    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX import_run_started ON import_run (started_at);
