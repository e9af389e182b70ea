-- MTA-STS and DANE of the domains routed by their own MX records: the same table and the same
-- journal rows as 0017_mta_sts.sqlite.sql (that file says what the columns mean).
CREATE TABLE mta_sts (
    domain     TEXT NOT NULL PRIMARY KEY,
    policy_id  TEXT,
    mode       TEXT CHECK (mode IN ('enforce', 'testing', 'none')),
    mx         TEXT NOT NULL DEFAULT '',
    max_age    BIGINT,
    fetched_at TEXT,
    expires_at TEXT,
    dane       BIGINT NOT NULL DEFAULT 0 CHECK (dane IN (0, 1)),
    answer     TEXT,
    checked_at TEXT,
    error      TEXT
);

CREATE FUNCTION change_mta_sts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO change (entity, key) VALUES ('domain', NEW.domain);
    ELSE
        INSERT INTO change (entity, key) VALUES ('domain', OLD.domain);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER change_mta_sts_insert AFTER INSERT ON mta_sts
    FOR EACH ROW WHEN (NEW.answer IS NOT NULL) EXECUTE FUNCTION change_mta_sts();
CREATE TRIGGER change_mta_sts_update AFTER UPDATE OF answer ON mta_sts
    FOR EACH ROW WHEN (OLD.answer IS DISTINCT FROM NEW.answer) EXECUTE FUNCTION change_mta_sts();
CREATE TRIGGER change_mta_sts_delete AFTER DELETE ON mta_sts
    FOR EACH ROW WHEN (OLD.answer IS NOT NULL) EXECUTE FUNCTION change_mta_sts();
