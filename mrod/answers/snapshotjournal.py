"""Bringing a RouteSnapshot up to date with the change journal.

``apply`` re-reads the current rows that journal rows name (so applying a change twice, or one
that a later commit superseded, converges on the database's state). It is two steps, so that
lookupd on PostgreSQL can read in its sync thread and change memory on the event loop, between
two lookups: ``read_changes`` (I/O) then ``install`` (none). A recipient added or removed
writes a journal row for its domain (``journal.domain_changed``), and re-reading a domain
re-reads its recipients. ``unjournaled`` takes in what a writer put in without a journal row.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from mrod.answers import snapshotpolicy
from mrod.answers.snapshot import ID_MASK, RouteSnapshot
from mrod.answers.snapshotsql import DOMAIN_COLUMNS, MTA_STS_SQL, RELAY_COLUMNS
from mrod.infra import journal
from mrod.infra.dbapi import SyncConnection

_CHUNK = 500


class Pending(NamedTuple):
    """What journal rows named, as read from the database: to ``install`` into a snapshot."""

    names: list[str]                     # domains to drop, then put back from ``rows``
    rows: list[tuple[Any, ...]]          # their current rows (absent: removed)
    relays: list[tuple[Any, ...]] | None  # every relay, when a relay changed
    position: int
    recipients: list[tuple[int, str]] | None = None   # (domain id, address) of the named domains
    policy: snapshotpolicy.Pending | None = None      # the policy's fields of the named domains
    mta_sts: list[tuple[str, str]] | None = None      # (domain, answer) of the named domains


def read_changes(conn: Any, changes: list[journal.Change], position: int | None = None,
                 recipients: bool = False) -> Pending:
    """Read the current rows the changes name (``conn``: sqlite3's or pgread's), with the named
    domains' recipients when ``recipients``."""
    names = list({c.key for c in changes if c.entity == journal.DOMAIN and c.key is not None})
    relay_ids = {int(c.key) for c in changes if c.entity == journal.RELAY and c.key is not None}
    rows: list[tuple[Any, ...]] = []
    listed: list[tuple[int, str]] | None = [] if recipients else None
    policies: list[tuple[str, str]] = []
    for start in range(0, len(names), _CHUNK):
        part = names[start:start + _CHUNK]
        marks = ", ".join("?" * len(part))
        rows.extend(tuple(r) for r in conn.execute(
            f"SELECT {DOMAIN_COLUMNS} FROM domain WHERE name IN ({marks})", part))
        # A journal row for a domain name also stands for its MTA-STS answer (migration 0017).
        policies.extend((r[0], r[1]) for r in conn.execute(f"{MTA_STS_SQL} AND domain IN ({marks})", part))
        if listed is not None:
            listed.extend((int(r[0]), r[1]) for r in conn.execute(
                f"SELECT r.domain_id, r.address FROM recipient r JOIN domain d ON d.id = r.domain_id"
                f" WHERE d.name IN ({marks})", part))
    relays = [tuple(r) for r in conn.execute(f"SELECT {RELAY_COLUMNS} FROM relay")] if relay_ids else None
    if position is None:
        position = changes[-1].seq if changes else 0
    return Pending(names, rows, relays, position, listed, snapshotpolicy.read(conn, names, bool(relay_ids)),
                   policies)


def apply(snap: RouteSnapshot, conn: SyncConnection, changes: list[journal.Change]) -> None:
    """Re-read what the changes name; read everything first, then change memory."""
    install(snap, read_changes(conn, changes))


def install(snap: RouteSnapshot, pending: Pending) -> None:
    """Put rows read by ``read_changes`` into memory (no I/O)."""
    if snap.listed is not None and pending.recipients is not None:
        for name in pending.names:
            packed = snap.domains.get(name)
            if packed is not None:
                snap.listed.pop(packed & ID_MASK, None)
        for row in pending.rows:
            snap.listed.pop(row[0], None)
        snap.add_recipients(pending.recipients)
    if snap.policy is not None and pending.policy is not None:
        gone = [packed & ID_MASK for packed in map(snap.domains.get, pending.names) if packed is not None]
        snapshotpolicy.install(snap.policy, gone, pending.policy)
    for name in pending.names:
        snap.remove(name)
        if pending.mta_sts is not None:
            snap.mta_sts.pop(name, None)
    if pending.mta_sts:
        snap.mta_sts.update(pending.mta_sts)
    for row in pending.rows:
        snap.put(row)
    if pending.relays is not None:
        snap.relays.clear()
        snap.set_relays(pending.relays)
    snap.position = max(snap.position, pending.position)


def unjournaled(snap: RouteSnapshot, conn: SyncConnection, limit: int) -> bool:
    """Take in domains inserted without a journal row (a writer outside mrod's write paths):
    rows with an id above any seen. False when there are more than ``limit`` (reload).
    (Missed: such an insert that reuses the id of a domain removed since the last check.)"""
    newest = conn.execute("SELECT coalesce(max(id), 0) FROM domain").fetchone()[0]
    if newest <= snap.max_id:
        # The newest domains were removed: SQLite gives their ids to the next inserts.
        snap.max_id = newest
        return True
    rows = conn.execute(f"SELECT {DOMAIN_COLUMNS} FROM domain WHERE id > ? ORDER BY id LIMIT ?",
                        (snap.max_id, limit + 1)).fetchall()
    if len(rows) > limit:
        return False
    for row in rows:
        snap.remove(row[1])
        snap.put(row)
    if snap.policy is not None and rows:
        snapshotpolicy.install(snap.policy, (), snapshotpolicy.read_ids(conn, [row[0] for row in rows]))
    return True
