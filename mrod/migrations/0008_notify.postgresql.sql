-- Every node's lookupd LISTENs on "mrod_change"; a commit that added journal rows
-- wakes them (PostgreSQL delivers a NOTIFY only at commit, and once per transaction for the
-- same channel and payload), so a change made on any node is answered within a round trip.
-- The notification carries nothing: lookupd reads the journal itself (a missed notification
-- is caught up the same way). One statement-level trigger: a bulk insert notifies once.
-- PostgreSQL only (SQLite's readers see commits through the WAL-index header instead):
-- tests/core/test_schema.py leaves this trigger out of its comparison of the two engines.
CREATE FUNCTION change_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mrod_change', '');
    RETURN NULL;
END $$;
CREATE TRIGGER change_notify AFTER INSERT ON change
    FOR EACH STATEMENT EXECUTE FUNCTION change_notify();
