"""Versioned schema migrations: ``NNNN_name.sql`` files applied in order, each once.

The schema version is SQLite's ``PRAGMA user_version``. Each file runs in one transaction
together with the version bump, so a failed migration leaves the database as it was.
"""
