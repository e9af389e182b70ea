-- As 0011_when_primary_up.sqlite.sql (that file says why): the mode while the primary is up,
-- and the policy's columns journaled (the trigger functions of 0005 stay as they are).
ALTER TABLE domain ADD COLUMN when_primary_up TEXT NOT NULL DEFAULT 'inherit'
    CHECK (when_primary_up IN ('inherit', 'accept', 'defer'));
ALTER TABLE relay ADD COLUMN when_primary_up TEXT NOT NULL DEFAULT 'accept'
    CHECK (when_primary_up IN ('accept', 'defer'));

DROP TRIGGER change_domain_update ON domain;
CREATE TRIGGER change_domain_update
    AFTER UPDATE OF name, relay_id, host, port, protocol, tls, enabled, include_subdomains, recipients,
        paused, quota_messages, quota_bytes, when_primary_up ON domain
    FOR EACH ROW EXECUTE FUNCTION change_domain_update();

DROP TRIGGER change_relay_update ON relay;
CREATE TRIGGER change_relay_update AFTER UPDATE OF name, host, port, protocol, tls, when_primary_up ON relay
    FOR EACH ROW EXECUTE FUNCTION change_relay();
