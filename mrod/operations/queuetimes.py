"""Queue times as people and the database read them: how long the oldest message has waited
('3d 4h'), and a postqueue arrival time (epoch seconds) as a stored timestamp."""

from __future__ import annotations

from datetime import datetime, timezone

from mrod.infra import db
from mrod.infra.errors import InvalidInput


def age(oldest: int | None, now: datetime | None = None) -> str:
    """'3d 4h', '25m', '' — how long the oldest message has waited."""
    if oldest is None:
        return ""
    seconds = max(0, int((now or datetime.now(timezone.utc)).timestamp()) - oldest)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def arrived(oldest: int | None) -> str | None:
    """A queue arrival time (epoch seconds, as postqueue -j gives it) as a stored timestamp."""
    return None if oldest is None else db.stamp(datetime.fromtimestamp(oldest, timezone.utc))


# Postfix's own time units (postconf(5): s, m, h, d, w), so a lifetime reads as main.cf's would.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_LIFETIME = 100 * 86400      # a backup MX that keeps mail longer than 100 days keeps it forever


def parse_duration(text: str, what: str = "duration") -> int:
    """'3d', '12h', '90m', '3600s', '1w', '3600' (seconds) -> seconds, from 1 s to 100 days;
    raises InvalidInput naming ``what``."""
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in UNITS else "s"
    digits = raw[:-1] if raw[-1:] in UNITS else raw
    if not digits.isascii() or not digits.isdigit() or not 0 < int(digits) * UNITS[unit] <= MAX_LIFETIME:
        raise InvalidInput(what, f"{text!r} is not a duration: a whole number with s, m, h, d or w"
                                 " (e.g. 3d, 12h), from 1s to 100d")
    return int(digits) * UNITS[unit]


def duration_text(seconds: int) -> str:
    """Seconds in Postfix's own notation, the largest unit that divides them: 259200 -> '3d'."""
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"
