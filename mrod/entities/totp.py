"""Two-factor sign-in with time-based one-time passwords (TOTP, RFC 6238: 30-second steps,
6 digits, SHA-1 — what every authenticator app speaks) and one-time recovery codes.

Enrolment is two steps: a secret is made and shown (QR code) but stays *pending* until a code
from the app proves the app holds it; only then does sign-in ask for codes. Each accepted code
moves ``totp_last_step`` on, so a code is good once (no replay within its window). Recovery
codes are random, shown once, stored as SHA-256 (they carry 40 random bits each and sign-in is
throttled, so a slow hash buys nothing) and each works once.

A sign-in half done (password right, code to come) is a *pending login*: a random token in a
cookie, its hash here, a few minutes and a few tries long.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pyotp

from mrod.infra.dbapi import Connection
from mrod.entities import audit, users
from mrod.entities.audit import Actor
from mrod.entities.sessions import digest
from mrod.infra import db
from mrod.infra.enums import TwoFactorMode
from mrod.infra.errors import InvalidInput

STEP = 30                 # seconds per code (RFC 6238's default, what the apps assume)
DRIFT_STEPS = 1           # a code from the step before or after is accepted (clock drift)
RECOVERY_CODES = 10
PENDING_MINUTES = 5       # to type the code after the password
PENDING_TRIES = 5         # wrong codes before the password must be given again
ISSUER = "mrod"


@dataclass(frozen=True)
class TwoFactor:
    enabled: bool
    enabled_at: str | None
    recovery_left: int
    pending: str | None       # a secret shown for enrolment, not confirmed yet


@dataclass(frozen=True)
class PendingLogin:
    id: int
    user_id: int
    next: str
    tries: int


def required(mode: str, user: users.User) -> bool:
    """Must this user sign in with a code too (``[admin] two_factor_required``)?"""
    return mode == TwoFactorMode.ALL or (mode == TwoFactorMode.ADMINS and user.is_admin)


async def state(conn: Connection, user_id: int) -> TwoFactor:
    async with conn.execute(
            "SELECT totp_secret, totp_enabled_at, totp_pending,"
            " (SELECT count(*) FROM totp_recovery r WHERE r.user_id = u.id AND r.used_at IS NULL)"
            " FROM \"user\" u WHERE id = ?", (user_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return TwoFactor(False, None, 0, None)
    return TwoFactor(row[0] is not None, row[1], row[3], row[2])


async def enabled(conn: Connection, user_id: int) -> bool:
    async with conn.execute("SELECT totp_secret IS NOT NULL FROM \"user\" WHERE id = ?", (user_id,)) as cur:
        row = await cur.fetchone()
    return bool(row and row[0])


async def enrolled_ids(conn: Connection) -> set[int]:
    """The users who sign in with a code (for user lists)."""
    async with conn.execute("SELECT id FROM \"user\" WHERE totp_secret IS NOT NULL") as cur:
        return {row[0] for row in await cur.fetchall()}


def provisioning_uri(secret: str, user_name: str, issuer: str = ISSUER) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=user_name, issuer_name=issuer)


async def pending_secret(conn: Connection, user_id: int) -> str:
    """The secret being enrolled: the one already shown, or a new one (never the active one)."""
    current = await state(conn, user_id)
    if current.pending:
        return current.pending
    secret = pyotp.random_base32()
    async with db.transaction(conn):
        await conn.execute("UPDATE \"user\" SET totp_pending = ? WHERE id = ?", (secret, user_id))
    return secret


def _code(value: str) -> str | None:
    """Six digits, however they were typed ("123 456", "123-456"), else None."""
    digits = value.replace(" ", "").replace("-", "")
    return digits if len(digits) == 6 and digits.isascii() and digits.isdigit() else None


def _matching_step(secret: str, code: str, now: float, after: int | None) -> int | None:
    """The time step ``code`` belongs to (within the drift), if later than ``after``."""
    totp = pyotp.TOTP(secret, interval=STEP)
    current = int(now) // STEP
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if (after is None or step > after) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _normal_recovery(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalnum())


def new_recovery_code() -> str:
    raw = secrets.token_hex(5)
    return f"{raw[:5]}-{raw[5:]}"


async def confirm(conn: Connection, actor: Actor, user_id: int, code: str) -> list[str]:
    """Finish enrolment with a code from the app; returns the recovery codes (shown once)."""
    current = await state(conn, user_id)
    if current.pending is None:
        raise InvalidInput("code", "start the set-up again: no secret is waiting for confirmation")
    typed = _code(code)
    step = _matching_step(current.pending, typed, time.time(), None) if typed else None
    if step is None:
        raise InvalidInput("code", "that code does not match; type the 6 digits the app shows now")
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    async with db.transaction(conn):
        user = await users.get(conn, user_id)
        await conn.execute("UPDATE \"user\" SET totp_secret = totp_pending, totp_pending = NULL, totp_enabled_at = ?,"
                           " totp_last_step = ? WHERE id = ?", (db.now(), step, user_id))
        await conn.execute("DELETE FROM totp_recovery WHERE user_id = ?", (user_id,))
        await conn.executemany("INSERT INTO totp_recovery (user_id, code_hash) VALUES (?, ?)",
                               ((user_id, digest(_normal_recovery(c))) for c in codes))
        await audit.record(conn, actor, "2fa-enable", "user", user.name, None,
                           {"two_factor": "TOTP", "recovery_codes": RECOVERY_CODES})
    return codes


async def check(conn: Connection, user_id: int, typed: str) -> str | None:
    """Is ``typed`` a good second factor for this user now? "code" or "recovery code" (that
    recovery code is then used up), else None. A code is accepted once."""
    typed = typed.strip()[:64]
    async with db.transaction(conn):
        row = await _factor(conn, user_id)
        if row is None:
            return None
        code = _code(typed)
        if code is not None:
            step = _matching_step(row[0], code, time.time(), row[1])
            if step is None:
                return None
            await conn.execute("UPDATE \"user\" SET totp_last_step = ? WHERE id = ?", (step, user_id))
            return "code"
        normal = _normal_recovery(typed)
        if not normal:
            return None
        cur = await conn.execute("UPDATE totp_recovery SET used_at = ? WHERE user_id = ? AND code_hash = ?"
                                 " AND used_at IS NULL", (db.now(), user_id, digest(normal)))
        return "recovery code" if cur.rowcount == 1 else None


async def already_used(conn: Connection, user_id: int, typed: str) -> bool:
    """Was ``typed`` a good code that has been used already (an app code of a step already
    accepted, within the drift, or a spent recovery code)? For telling the person why a code
    was refused; it accepts nothing."""
    typed = typed.strip()[:64]
    row = await _factor(conn, user_id)
    if row is None:
        return False
    code = _code(typed)
    if code is not None:
        return row[1] is not None and _matching_step(row[0], code, time.time(), None) is not None
    normal = _normal_recovery(typed)
    if not normal:
        return False
    async with conn.execute("SELECT 1 FROM totp_recovery WHERE user_id = ? AND code_hash = ? AND used_at IS NOT NULL",
                            (user_id, digest(normal))) as cur:
        return await cur.fetchone() is not None


async def _factor(conn: Connection, user_id: int) -> tuple[str, int | None] | None:
    """The user's TOTP secret and the last step a code was accepted for (None: no second factor)."""
    async with conn.execute("SELECT totp_secret, totp_last_step FROM \"user\" WHERE id = ?", (user_id,)) as cur:
        row = await cur.fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


async def _clear(conn: Connection, user_id: int) -> None:
    await conn.execute("UPDATE \"user\" SET totp_secret = NULL, totp_pending = NULL, totp_enabled_at = NULL,"
                       " totp_last_step = NULL WHERE id = ?", (user_id,))
    await conn.execute("DELETE FROM totp_recovery WHERE user_id = ?", (user_id,))


async def disable(conn: Connection, actor: Actor, user_id: int) -> None:
    """The user turns it off (the caller has checked their password and a code)."""
    async with db.transaction(conn):
        user = await users.get(conn, user_id)
        await _clear(conn, user_id)
        await audit.record(conn, actor, "2fa-disable", "user", user.name, {"two_factor": "TOTP"}, None)


async def reset(conn: Connection, actor: Actor, ref: str | int) -> tuple[users.User, bool]:
    """An operator removes a locked-out user's second factor (``mrod user 2fa-reset``); their
    sessions end. Returns (user, whether they had one)."""
    async with db.transaction(conn):
        user = await users.get(conn, ref)
        had = await enabled(conn, user.id)
        await _clear(conn, user.id)
        await conn.execute("DELETE FROM session WHERE user_id = ?", (user.id,))
        await conn.execute("DELETE FROM login_pending WHERE user_id = ?", (user.id,))
        await audit.record(conn, actor, "2fa-reset", "user", user.name, {"two_factor": "TOTP" if had else None},
                           None)
    return user, had


# -- the sign-in between password and code --------------------------------------------------


async def begin_login(conn: Connection, user_id: int, remote: str, target: str) -> str:
    """After the right password: a token for the cookie that the code step redeems."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    async with db.transaction(conn):
        await conn.execute("DELETE FROM login_pending WHERE expires_at < ? OR user_id = ?", (db.stamp(now), user_id))
        await conn.execute("INSERT INTO login_pending (token_hash, user_id, created_at, expires_at, remote, next)"
                           " VALUES (?, ?, ?, ?, ?, ?)", (digest(token), user_id, db.stamp(now),
                                                         db.stamp(now + timedelta(minutes=PENDING_MINUTES)),
                                                         remote, target))
    return token


async def pending_login(conn: Connection, token: str | None, remote: str) -> PendingLogin | None:
    """The live pending login of this cookie, from the address that gave the password."""
    if not token or len(token) > 200:
        return None
    async with conn.execute("SELECT id, user_id, next, tries FROM login_pending WHERE token_hash = ?"
                            " AND expires_at > ? AND remote = ?", (digest(token), db.now(), remote)) as cur:
        row = await cur.fetchone()
    return None if row is None else PendingLogin(*row)


async def login_failed(conn: Connection, pending: PendingLogin) -> bool:
    """Count a wrong code; True when this pending login is used up (password again)."""
    async with db.transaction(conn):
        await conn.execute("UPDATE login_pending SET tries = tries + 1 WHERE id = ?", (pending.id,))
        if pending.tries + 1 >= PENDING_TRIES:
            await conn.execute("DELETE FROM login_pending WHERE id = ?", (pending.id,))
            return True
    return False


async def end_login(conn: Connection, pending: PendingLogin) -> None:
    async with db.transaction(conn):
        await conn.execute("DELETE FROM login_pending WHERE id = ?", (pending.id,))
