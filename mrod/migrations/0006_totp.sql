-- TOTP two-factor sign-in (RFC 6238), and failed sign-ins kept after a success.

-- The shared secret (base32) once enrolment is confirmed; NULL: no second factor. It must be
-- readable to check codes, so it is not hashed: a copy of the database is a copy of the
-- authenticators (as with every TOTP server); recovery codes below are hashed.
ALTER TABLE user ADD COLUMN totp_secret TEXT;
-- A secret shown as a QR code but not yet confirmed with a code from the app.
ALTER TABLE user ADD COLUMN totp_pending TEXT;
ALTER TABLE user ADD COLUMN totp_enabled_at TEXT;
-- The last 30-second time step a code was accepted for: a code is good once (no replay).
ALTER TABLE user ADD COLUMN totp_last_step INTEGER;

-- One-time recovery codes, shown once at enrolment; only their SHA-256 is stored.
CREATE TABLE totp_recovery (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TEXT
);
CREATE INDEX totp_recovery_user ON totp_recovery (user_id);

-- A sign-in half done: the password was right, the code is still to come. The browser holds
-- a random token (cookie on /login only); only its SHA-256 is stored. Short-lived.
CREATE TABLE login_pending (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    remote     TEXT,
    next       TEXT NOT NULL DEFAULT '/',
    tries      INTEGER NOT NULL DEFAULT 0
);

-- A later good sign-in (same address, same name) no longer deletes the failures before it:
-- it marks them, so they stop counting towards a block but stay on the blocklist page.
ALTER TABLE login_failure ADD COLUMN cleared_at TEXT;
