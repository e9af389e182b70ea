"""The policy's fields in the routing snapshot (issue 23.3): what lets lookupd decide a policy
request from memory.

Kept apart from the routing index (RouteSnapshot.policy, None until loaded: then every policy
request is decided from the database, as before). Only domains whose policy differs from the
plain one are held — paused, a quota of their own, or a mode while the primary is up other than
``inherit`` — so 1M plain domains cost nothing here. Relays: name -> mode while up.

The columns are journaled (migration 0011), so the snapshot's journal readers (snapshotsql,
snapshotjournal, snapshotfile) bring these along with the rows they re-read.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from mrod.infra.enums import WhenPrimaryUp

COLUMNS = "id, paused, quota_messages, quota_bytes, when_primary_up"
NOT_PLAIN = ("paused <> 0 OR quota_messages IS NOT NULL OR quota_bytes IS NOT NULL"
             f" OR when_primary_up <> '{WhenPrimaryUp.INHERIT.value}'")
RELAY_COLUMNS = "name, when_primary_up"
_CHUNK = 500


class Flags(NamedTuple):
    paused: bool
    quota_messages: int | None     # None: the [policy] default
    quota_bytes: int | None
    when_primary_up: str


PLAIN = Flags(False, None, None, WhenPrimaryUp.INHERIT)


class PolicyIndex:
    def __init__(self) -> None:
        self.domains: dict[int, Flags] = {}
        self.relays: dict[str, str] = {}

    def flags(self, domain_id: int) -> Flags:
        return self.domains.get(domain_id, PLAIN)

    def put(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for did, paused, messages, size, mode in rows:
            flags = Flags(bool(paused), messages, size, mode)
            if flags == PLAIN:
                self.domains.pop(did, None)
            else:
                self.domains[did] = flags

    def set_relays(self, rows: Iterable[tuple[Any, ...]]) -> None:
        self.relays = {name: mode for name, mode in rows}

    def state(self) -> dict[str, Any]:
        """As plain data, for lookupd's snapshot file (snapshotfile.py)."""
        return {"domains": [[did, *flags] for did, flags in self.domains.items()],
                "relays": dict(self.relays)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PolicyIndex:
        index = cls()
        index.put(tuple(row) for row in state["domains"])
        index.set_relays(state["relays"].items())
        return index


class Pending(NamedTuple):
    """Policy rows read for journal changes: to install with the routing rows."""

    domains: list[tuple[Any, ...]]            # rows of the named domains that are not plain
    relays: list[tuple[Any, ...]] | None      # every relay's mode, when a relay changed


def load(conn: Any) -> PolicyIndex:
    index = PolicyIndex()
    index.put(conn.execute(f"SELECT {COLUMNS} FROM domain WHERE {NOT_PLAIN}"))
    index.set_relays(conn.execute(f"SELECT {RELAY_COLUMNS} FROM relay"))
    return index


def read(conn: Any, names: list[str], relays: bool) -> Pending:
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(names), _CHUNK):
        part = names[start:start + _CHUNK]
        rows.extend(tuple(r) for r in conn.execute(
            f"SELECT {COLUMNS} FROM domain WHERE name IN ({', '.join('?' * len(part))})", part))
    modes = [tuple(r) for r in conn.execute(f"SELECT {RELAY_COLUMNS} FROM relay")] if relays else None
    return Pending(rows, modes)


def read_ids(conn: Any, ids: list[int]) -> Pending:
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), _CHUNK):
        part = ids[start:start + _CHUNK]
        rows.extend(tuple(r) for r in conn.execute(
            f"SELECT {COLUMNS} FROM domain WHERE id IN ({', '.join('?' * len(part))})", part))
    return Pending(rows, None)


def install(index: PolicyIndex, gone: Iterable[int], pending: Pending) -> None:
    """Drop the domains re-read (by id, before the change), then put their current rows."""
    for did in gone:
        index.domains.pop(did, None)
    index.put(pending.domains)
    if pending.relays is not None:
        index.set_relays(pending.relays)
