"""Queue times as people and the database read them: how long the oldest message has waited
('3d 4h'), and a postqueue arrival time (epoch seconds) as a stored timestamp."""

from __future__ import annotations

from datetime import datetime, timezone

from mrod.infra import db


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

