"""How values read on a page: one date format everywhere (ISO 8601 date and time, UTC, to the
minute; the exact instant in the <time datetime> attribute), durations and booleans in words
(never Python's ``True`` or ``168.0 hours``), long texts cut at a word."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from mrod.infra import db

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def when(value: Any) -> str:
    """'2026-12-02 04:37 UTC' for a stored stamp (or a datetime); '—' for nothing."""
    if value in (None, ""):
        return "—"
    moment = value if isinstance(value, datetime) else None
    if moment is None:
        try:
            moment = db.parse_stamp(str(value))
        except ValueError:
            return str(value)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def duration(seconds: Any) -> str:
    """'7 days', '1 hour 30 minutes', '45 seconds' — the two largest units, rounded to the second."""
    try:
        left = round(float(seconds))
    except (TypeError, ValueError):
        return str(seconds)
    if left <= 0:
        return "0 seconds"
    parts = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts[:2])


# Stored field and setting names as a page says them (the audit log, the CSV import preview);
# a name not listed reads with its underscores as spaces.
LABELS = {
    "relay_name": "relay", "relay_id": "relay", "include_subdomains": "subdomains too", "recipients": "recipients",
    "route": "route decided by", "owner_id": "owner", "pause_reason": "pause reason",
    "queue_lifetime": "queue lifetime (seconds)",
    "quota_messages": "queue quota (messages)", "quota_bytes": "queue quota (bytes)",
    "verify_when_down": "unknown addresses while the primary is down",
    "when_primary_up": "while the primary is up", "tls": "TLS", "mx": "by MX",
    "q": "name containing", "set": "set", "changed": "domains changed", "unchanged": "domains unchanged",
    "filter": "chosen by", "domains": "domains", "is_admin": "admin", "next_step": "next step",
    "recovery_codes": "recovery codes", "two_factor": "two-factor",
}


def label(name: Any) -> str:
    """'queue quota (messages)' for quota_messages: a field as words, never a column name."""
    key = str(name)
    return LABELS.get(key, key.replace("_", " "))


def plain(value: Any) -> str:
    """A stored value as words: yes/no for booleans, '—' for nothing, lists joined, stamps as
    dates, a mapping as 'label: value' pairs (never Python's {'q': 'shop'})."""
    if isinstance(value, dict):
        return "; ".join(f"{label(k)}: {plain(v)}" for k, v in value.items()) or "—"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(plain(v) for v in value) or "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and len(value) == 20 and value[10:11] == "T":
        return when(value)         # a stored stamp (e.g. a block's "until") reads like every date
    return str(value)


def cut(text: Any, limit: int = 80) -> str:
    """At most ``limit`` characters, cut at a space (never mid-word), with '…' when cut."""
    text = str(text or "")
    if len(text) <= limit:
        return text
    head = text[:limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip(" ,;(") + "…"


def breakable(hop: Any) -> Markup:
    """A next hop ``[mx1.example.net]:25`` that may wrap only after a dot or before the port
    (<wbr>), never inside a label."""
    text = str(escape(str(hop or "")))
    return Markup(text.replace(".", ".<wbr>").replace("]:", "]<wbr>:"))
