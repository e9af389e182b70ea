"""Retention per domain against a real Postfix (primary down, mail deferred): a message of a
domain with its own short lifetime is expired (postsuper -e) and returned at once (postqueue
-i, although the backoff is an hour); mail of a domain without one, a message that also goes
to such a domain, and a held message stay. ``expires_at`` for the notifications."""

from __future__ import annotations

import asyncio
import time

import pytest

from mrod.entities import audit, domains
from mrod.infra import db
from mrod.operations import queuestats, retention
from tests.data import ACTOR, seed_file_sync
from tests.harness import free_port
from tests.ops.test_postfix_ops import SLOW_RETRIES, add_sections
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix


def expire(cfg) -> retention.Expiry:
    found = asyncio.run(retention.run_once(cfg))
    assert found is not None       # a domain has a lifetime: the queue was read
    return found


def test_a_domain_s_mail_expires_by_its_own_retention(mrod_factory, postfix_factory) -> None:
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": free_port()}],
                   domains=[{"name": "short.example", "relay": "primary"},
                            {"name": "keep.example", "relay": "primary"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    for rcpts in (["a@short.example"], ["b@keep.example"], ["c@short.example", "d@keep.example"],
                  ["e@short.example"]):
        postfix.smtp(rcpts, payload(rcpts[0], rcpts[0]))
    postfix.wait_for_queue(lambda q: len(q) == 4 and all(e["queue_name"] == "deferred" for e in q))
    ids = {r["address"]: e["queue_id"] for e in postfix.queue() for r in e["recipients"]}
    postfix.run("postsuper", "-c", str(postfix.etc), "-h", ids["e@short.example"])

    async def setup() -> None:
        async with db.opened(cfg.database) as conn:
            await domains.update(conn, ACTOR, "short.example", queue_lifetime="2s")
    asyncio.run(setup())
    assert expire(cfg).ids == []     # not old enough yet
    time.sleep(2.1)      # the lifetime itself: nothing to wait for but the clock

    mark = postfix.log_mark()
    expired = expire(cfg)
    assert expired.ids == [ids["a@short.example"]] and expired.domains == {"short.example": 1}
    postfix.wait_for_log(rf"{ids['a@short.example']}: .*status=force-expired", since=mark)
    left = {e["queue_id"] for e in postfix.wait_for_queue(
        lambda q: ids["a@short.example"] not in {e["queue_id"] for e in q})}
    assert {ids["b@keep.example"], ids["c@short.example"], ids["e@short.example"]} <= left

    async def audited() -> list[audit.AuditEntry]:
        async with db.opened(cfg.database) as conn:
            return await audit.entries(conn, entity="queue")
    [entry] = asyncio.run(audited())
    assert entry.after is not None
    assert (entry.action, entry.actor, entry.after["ids"]) == ("expire", "retention", [ids["a@short.example"]])
    # Nothing left to expire: a second pass does nothing.
    assert expire(cfg).ids == []


def test_expires_at_from_the_last_reading(mrod_factory, postfix_factory) -> None:
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": free_port()}],
                   domains=[{"name": "short.example", "relay": "primary"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    postfix.smtp(["a@short.example"], payload("x", "a@short.example"))
    [entry] = postfix.wait_for_queue(lambda q: len(q) == 1 and q[0]["queue_name"] == "deferred")
    asyncio.run(queuestats.refresh(cfg))

    async def when() -> tuple[int | None, int | None]:
        async with db.opened(cfg.database) as conn:
            d = await domains.get(conn, "short.example")
            default = await retention.expires_at(conn, d.id, postfix_default=await retention.postfix_lifetime(cfg))
            await domains.update(conn, ACTOR, "short.example", queue_lifetime="1h")
            return default, await retention.expires_at(conn, d.id)
    default, own = asyncio.run(when())
    assert own == entry["arrival_time"] + 3600
    # The test instance's main.cf does not set maximal_queue_lifetime: Postfix's 5d.
    assert default == entry["arrival_time"] + int(postfix.postconf("maximal_queue_lifetime").rstrip("d")) * 86400
