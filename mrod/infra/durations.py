"""Durations as Postfix writes them in main.cf (postconf(5): s, m, h, d, w): a per-domain queue
lifetime ('3d'), a listing's minimum age ('12h')."""

from __future__ import annotations

from mrod.infra.errors import InvalidInput


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
