"""Test data shared by every tier: who makes the changes, and the one seed builder.

``seed(conn, relays=[...], domains=[...], recipients=[...])`` writes through the core API (the
same validation and audit as the CLI), so a test's data is what an operator could have made:

    await seed(conn, relays=[{"name": "primary", "host": "mx1.example.net"}],
               domains=[{"name": "example.com", "relay": "primary", "include_subdomains": True}],
               recipients=["joe@example.com"])

``seed_file(path, ...)`` does it on a database file (created and migrated when missing);
``seed_file_sync`` for synchronous tests (real Postfix, subprocesses).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterable, Mapping


from mrod.infra.dbapi import Connection
from mrod.entities import domains as domaincore
from mrod.entities import recipients as recipientcore
from mrod.entities import relays as relaycore
from mrod.entities.audit import Actor
from mrod.infra import db

ACTOR = Actor("tester", "cli", "local")          # an operator at the CLI
SYSTEM = Actor.system("test")                     # set-up done by the test itself


async def seed(conn: Connection, *, relays: Iterable[Mapping[str, Any]] = (),
               domains: Iterable[Mapping[str, Any]] = (), recipients: Iterable[str] = (),
               actor: Actor = ACTOR) -> None:
    """Relays (relays.add fields), domains (a ``name`` plus domains.add fields), recipients."""
    for relay in relays:
        await relaycore.add(conn, actor, **relay)
    for domain in domains:
        spec = dict(domain)
        await domaincore.add(conn, actor, spec.pop("name"), **spec)
    for address in recipients:
        await recipientcore.add(conn, actor, address)


async def seed_file(path: Path, **data: Any) -> None:
    async with db.opened(path, create=True) as conn:
        await seed(conn, **data)


def seed_file_sync(path: Path, **data: Any) -> None:
    asyncio.run(seed_file(path, **data))
