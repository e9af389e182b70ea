-- PostgreSQL's NOTIFY on commit to the journal (0008_notify.postgresql.sql) has no
-- SQLite counterpart: lookupd on SQLite sees every commit through the WAL-index header
-- (lookupd/freshness.py). This half keeps both engines at the same schema version.
SELECT 1;
