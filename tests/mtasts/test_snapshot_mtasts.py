"""The MTA-STS answers in lookupd's snapshot: loaded with it, kept in its JSON file (lookupd on
PostgreSQL answers from that file while the database is gone), brought up to date by the
journal row a changed answer writes, and dropped with the row."""

from __future__ import annotations

import json
from pathlib import Path

from mrod.answers import routing, snapshotfile, snapshotjournal, snapshotsql
from mrod.answers.routestore import RouteStore
from mrod.entities import domains
from mrod.infra import db, journal
from mrod.mtasts import cache
from tests.data import ACTOR

SECURE = "secure match=mail.a.example servername=hostname"


def _row(domain: str, answer: str | None) -> cache.Cached:
    return cache.Cached(domain, "1", "enforce" if answer else None, ("mail.a.example",) if answer else (), 86400,
                        None, None, False, answer, None, None)


async def test_answers_follow_the_journal_and_survive_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with db.opened(path, create=True) as conn:
        await domains.add(conn, ACTOR, "a.example", mx=True)
        await domains.add(conn, ACTOR, "b.example", mx=True, tls="encrypt")
        await cache.save(conn, _row("a.example", SECURE))
    store = RouteStore.open(path)
    try:
        snap = snapshotsql.load(store.conn)
        assert snap.mta_sts == {"a.example": SECURE}
        restored = snapshotfile.from_state(json.loads(json.dumps(snapshotfile.state(snap))))
        assert routing.answer(restored, "tls_policy", "a.example").value == SECURE
        async with db.opened(path) as conn:
            await cache.save(conn, _row("b.example", "dane"))
            await cache.save(conn, _row("a.example", None))
        snapshotjournal.apply(snap, store.conn, journal.since(store.conn, snap.position, 100) or [])
        assert snap.mta_sts == {"b.example": "dane"}
        assert routing.answer(snap, "tls_policy", "a.example").status == "NOTFOUND"
        assert routing.answer(snap, "tls_policy", "b.example").value == "dane-only"   # over its own encrypt
        assert routing.answer(store, "tls_policy", "b.example").value == "dane-only"  # SQL says the same
        async with db.opened(path) as conn:
            await cache.forget(conn, {"a.example"})
        snapshotjournal.apply(snap, store.conn, journal.since(store.conn, snap.position, 100) or [])
        assert snap.mta_sts == {}
        assert routing.answer(snap, "tls_policy", "b.example").value == "encrypt"
    finally:
        store.close()
