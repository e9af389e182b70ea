-- Accept only when needed (issue 20.1): what this backup MX does with mail for a domain while
-- its primary is up, as this node's health monitor sees it. A domain's `inherit` takes its
-- relay's choice; a relay's `accept` is the old behaviour (take the mail), `defer` answers
-- RCPT with a 4xx so that the sender's MTA retries and reaches the primary.
ALTER TABLE domain ADD COLUMN when_primary_up TEXT NOT NULL DEFAULT 'inherit'
    CHECK (when_primary_up IN ('inherit', 'accept', 'defer'));
ALTER TABLE relay ADD COLUMN when_primary_up TEXT NOT NULL DEFAULT 'accept'
    CHECK (when_primary_up IN ('accept', 'defer'));

-- lookupd's policy decisions now come from its snapshot too (issue 23.3): the columns they
-- depend on (pause, quotas, the new mode) are journaled like the routing columns, so the next
-- policy request sees a committed change. pause_reason is not: a paused domain is decided
-- from the database, which has it.
DROP TRIGGER change_domain_update;
CREATE TRIGGER change_domain_update
AFTER UPDATE OF name, relay_id, host, port, protocol, tls, enabled, include_subdomains, recipients,
    paused, quota_messages, quota_bytes, when_primary_up ON domain
BEGIN
    INSERT INTO change (entity, key) VALUES ('domain', OLD.name);
    INSERT INTO change (entity, key) SELECT 'domain', NEW.name WHERE NEW.name <> OLD.name;
END;

DROP TRIGGER change_relay_update;
CREATE TRIGGER change_relay_update AFTER UPDATE OF name, host, port, protocol, tls, when_primary_up ON relay
BEGIN
    INSERT INTO change (entity, key) VALUES ('relay', OLD.id);
END;
