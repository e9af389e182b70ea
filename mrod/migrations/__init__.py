"""Versioned schema migrations, one source of truth for both engines.

``NNNN_name.sql`` is written in the SQL both engines share (SQLite's spelling of types);
PostgreSQL runs the same file through ``mrod.infra.pgschema.translate`` (INTEGER → BIGINT,
``id INTEGER PRIMARY KEY`` → an identity column, REAL → DOUBLE PRECISION, WITHOUT ROWID
dropped, the table name ``user`` quoted). Where the engines cannot share a statement
(triggers, functions), a migration comes as a pair instead: ``NNNN_name.sqlite.sql`` and
``NNNN_name.postgresql.sql``. tests/core/test_schema.py checks that both schemas agree.

The schema version is SQLite's ``PRAGMA user_version``, and the ``schema_migration`` table on
PostgreSQL. Each migration runs in one transaction together with the version bump, so a failed
migration leaves the database as it was.
"""
