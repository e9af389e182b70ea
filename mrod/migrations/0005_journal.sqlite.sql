-- The change journal: one monotonically numbered row per change to what lookupd
-- answers from memory, written in the writer's own transaction, so a reader that knows the
-- last seq it applied refreshes only what changed since (mrod/infra/journal.py).
--
--   entity 'domain': key = the domain name (a rename writes the old and the new name);
--   entity 'relay':  key = the relay id (as text);
--   entity 'all':    key NULL — reload everything (a bulk import writes one such row instead
--                    of one per domain).
--
-- Recipients are not journaled: lookupd reads them from the database on every lookup of a
-- `listed` domain (they can be many; an indexed query is cheap and always current).
--
-- Who writes the rows: UPDATE/DELETE of domains and every change of a relay by the triggers
-- below (any writer, even a raw SQL session); INSERT of domains by mrod's write paths
-- (journal.domains_added) because a per-row INSERT trigger doubled a 100k-line import —
-- even one whose WHEN clause is false (BENCHMARKS.md). lookupd also takes in domain ids above
-- any it has seen at every commit, so a writer outside mrod that inserts domains is seen too,
-- unless it reuses a removed domain's id: such a writer should add INSERT INTO change (entity)
-- VALUES ('all').
--
-- PostgreSQL has the same table and the same triggers as PL/pgSQL functions in
-- 0005_journal.postgresql.sql (seq a bigint identity): the same rows for the same changes.
-- There seq values are not committed in order (and a rolled-back insert leaves a hole), so a
-- reader must not simply trust "last seq" or take a hole for pruning: it re-reads a window
-- behind its position or serialises writers on the journal (mrod/infra/journal.py says which).
CREATE TABLE change (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL CHECK (entity IN ('domain', 'relay', 'all')),
    key    TEXT
);

-- Keep the journal bounded: a reader whose position fell behind the oldest kept row reloads
-- everything (it sees a gap in seq).
CREATE TRIGGER change_prune AFTER INSERT ON change WHEN NEW.seq % 1000 = 0
BEGIN
    DELETE FROM change WHERE seq <= NEW.seq - 100000;
END;

-- Only the columns an answer depends on (not updated_at, missing_since, paused, quotas...).
CREATE TRIGGER change_domain_update
AFTER UPDATE OF name, relay_id, host, port, protocol, tls, enabled, include_subdomains, recipients ON domain
BEGIN
    INSERT INTO change (entity, key) VALUES ('domain', OLD.name);
    INSERT INTO change (entity, key) SELECT 'domain', NEW.name WHERE NEW.name <> OLD.name;
END;

CREATE TRIGGER change_domain_delete AFTER DELETE ON domain
BEGIN
    INSERT INTO change (entity, key) VALUES ('domain', OLD.name);
END;

CREATE TRIGGER change_relay_insert AFTER INSERT ON relay
BEGIN
    INSERT INTO change (entity, key) VALUES ('relay', NEW.id);
END;

CREATE TRIGGER change_relay_update AFTER UPDATE OF name, host, port, protocol, tls ON relay
BEGIN
    INSERT INTO change (entity, key) VALUES ('relay', OLD.id);
END;

CREATE TRIGGER change_relay_delete AFTER DELETE ON relay
BEGIN
    INSERT INTO change (entity, key) VALUES ('relay', OLD.id);
END;
