"""Turning a round's notices into messages: one per recipient, however many notices — a digest
when there are several — as a title, a text for people (the email's body, the webhook's
``text`` field that Slack/Mattermost/Matrix hooks show) and the structured events."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Iterable

# Lines of text in one message; the JSON's "events" still carry every notice.
TEXT_LINES = 200


@dataclass(frozen=True)
class Item:
    """One notice: a condition that appeared (new), still holds (repeat), or ended (resolved)."""
    change: str
    kind: str
    subject: str
    severity: str
    text: str
    domains: tuple[str, ...]

    def line(self) -> str:
        mark = "RESOLVED" if self.change == "resolved" else self.severity.upper()
        again = " (still)" if self.change == "repeat" else ""
        return f"{mark}{again} {self.kind} {self.subject}: {self.text}"

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy() | {"domains": list(self.domains)}


def for_owner(items: Iterable[Item], theirs: set[str]) -> list[Item]:
    """The notices that touch an owner's domains, each naming only theirs."""
    found = []
    for item in items:
        mine = tuple(d for d in item.domains if d in theirs)
        if mine:
            found.append(replace(item, domains=mine,
                                 text=f"{item.text} — your domain(s): {', '.join(mine)}"
                                 if len(mine) < len(item.domains) or item.kind == "relay_down" else item.text))
    return found


def title(items: list[Item], node: str) -> str:
    if len(items) == 1:
        return f"[mrod {node}] {items[0].line()}"[:200]
    kinds = Counter(f"{i.kind}{' resolved' if i.change == 'resolved' else ''}" for i in items)
    return f"[mrod {node}] {len(items)} notices: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common())


def compose(items: list[Item], node: str, *, at: str, event: str = "") -> tuple[str, dict[str, Any]]:
    """(title, payload) of one message; payload["text"] is the body people read."""
    head = title(items, node)
    lines = [i.line() for i in items[:TEXT_LINES]]
    if len(items) > TEXT_LINES:
        lines.append(f"… and {len(items) - TEXT_LINES} more (mrod notify list, or the panel's Notifications page)")
    text = "\n".join([head, "", *lines, "", f"— mrod on {node}, {at}"])
    return head, {"text": text, "title": head, "node": node, "sent_at": at,
                  "event": event or (items[0].kind if len(items) == 1 else "digest"),
                  "events": [i.as_dict() for i in items]}
