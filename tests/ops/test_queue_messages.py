"""The queue message by message against a real Postfix whose primary is down (mail deferred):
listing with filters and paging, hold and release by id (the message moves to hold and back,
and is tried at once), requeue, delete with confirmation, all matching of a domain, audit rows
naming the ids."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest

from mrod.admin.app import create_app
from mrod.entities import audit, domains, tokens, users
from mrod.infra import db
from tests.admin.conftest import PASSWORD
from tests.data import SYSTEM, seed_file_sync
from tests.harness import free_port
from tests.ops.test_postfix_ops import SLOW_RETRIES, add_sections
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix


def by_recipient(postfix) -> dict[str, dict]:
    return {",".join(sorted(r["address"] for r in e["recipients"])): e for e in postfix.queue()}


@pytest.fixture
def queued(mrod_factory, postfix_factory):
    """Five deferred messages: a.example (one to a subdomain), b.example, and one for both."""
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": free_port()}],
                   domains=[{"name": "a.example", "relay": "primary", "include_subdomains": True},
                            {"name": "b.example", "relay": "primary"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    sends = [(["x1@a.example"], "alice@client.test"), (["x2@sub.a.example"], "bob@client.test"),
             (["x3@a.example"], "alice@client.test"), (["y1@b.example"], "carol@client.test"),
             (["x4@a.example", "y2@b.example"], "dave@client.test")]
    for i, (rcpts, sender) in enumerate(sends):
        postfix.smtp(rcpts, payload(f"m{i}", rcpts[0]), sender=sender)
    postfix.wait_for_queue(lambda q: len(q) == 5 and all(e["queue_name"] == "deferred" for e in q))
    return mrod, cfg, postfix


def listed(mrod, *args: str) -> dict:
    return json.loads(mrod.cli("queue", "list", "--json", *args).stdout)


def test_list_filters_and_pages(queued) -> None:
    mrod, cfg, postfix = queued
    everything = listed(mrod)
    assert everything["total"] == 5 and everything["next_after"] is None
    ids = [m["queue_id"] for m in everything["messages"]]
    assert ids == sorted(ids)
    first = everything["messages"][0]
    assert first["queue"] == "deferred" and first["size"] > 0 and first["age_seconds"] >= 0
    assert "Connection refused" in first["reason"]

    a = listed(mrod, "--domain", "a.example")
    assert a["total"] == 4      # x1, the subdomain's x2, x3 and the mixed one
    assert sorted(m["only_this_domain"] for m in a["messages"]) == [False, True, True, True]
    assert listed(mrod, "--domain", "b.example")["total"] == 2
    assert listed(mrod, "--sender", "ALICE")["total"] == 2
    assert listed(mrod, "--recipient", "sub.a.")["total"] == 1
    assert listed(mrod, "--queue", "hold")["total"] == 0
    assert listed(mrod, "--older-than", "1h")["total"] == 0

    # Pages of two, by queue id after a cursor: every message once, in order.
    seen, after = [], None
    for _ in range(5):
        page = listed(mrod, "--limit", "2", *(["--after", after] if after else []))
        assert page["total"] == 5 and len(page["messages"]) <= 2
        seen += [m["queue_id"] for m in page["messages"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == ids

    table = mrod.cli("queue", "list", "--domain", "b.example").stdout
    assert "2 of 2 matching message(s)" in table and "carol@client.test" in table
    bad = mrod.cli("queue", "list", "--older-than", "soon", check=False)
    assert bad.returncode == 2 and "older than" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    # Plain `mrod queue` keeps its per-domain figures.
    plain = json.loads(mrod.cli("queue", "--json").stdout)
    assert {d["domain"]: d["messages"] for d in plain["domains"]} == {"a.example": 4, "b.example": 2}


def test_hold_release_requeue_delete_by_id(queued) -> None:
    mrod, cfg, postfix = queued
    queue = by_recipient(postfix)
    one = queue["x1@a.example"]["queue_id"]

    assert "Postfix acted on 1 of 1" in mrod.cli("queue", "hold", one).stdout
    postfix.wait_for_queue(lambda q: any(e["queue_id"] == one and e["queue_name"] == "hold" for e in q))
    assert [m["queue_id"] for m in listed(mrod, "--queue", "hold")["messages"]] == [one]

    mark = postfix.log_mark()
    assert "Postfix acted on 1 of 1" in mrod.cli("queue", "release", one).stdout
    # Out of hold, and tried at once (postqueue -i) although the backoff is an hour.
    postfix.wait_for_log(rf"{one}: to=<x1@a.example>.*status=deferred", since=mark)
    postfix.wait_for_queue(lambda q: any(e["queue_id"] == one and e["queue_name"] == "deferred" for e in q))

    mark = postfix.log_mark()
    mrod.cli("queue", "requeue", one)
    postfix.wait_for_log(r"to=<x1@a.example>.*status=deferred", since=mark)

    # Delete: refused without --yes when not on a terminal; nothing deleted.
    two = queue["y1@b.example"]["queue_id"]
    refused = mrod.cli("queue", "delete", two, check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert two in {e["queue_id"] for e in postfix.queue()}
    mrod.cli("queue", "delete", two, "--yes")
    postfix.wait_for_queue(lambda q: two not in {e["queue_id"] for e in q})

    bogus = mrod.cli("queue", "hold", "not-an-id", check=False)
    assert bogus.returncode == 2 and "queue id" in bogus.stderr

    async def rows() -> list[audit.AuditEntry]:
        async with db.opened(cfg.database) as conn:
            return await audit.entries(conn, entity="queue")
    entries = asyncio.run(rows())
    assert {(e.action, tuple((e.after or {})["ids"])) for e in entries} >= {
        ("hold", (one,)), ("release", (one,)), ("requeue", (one,)), ("delete", (two,))}


def test_all_matching_of_a_domain_leaves_mixed_messages(queued) -> None:
    mrod, cfg, postfix = queued
    out = json.loads(mrod.cli("queue", "hold", "--domain", "b.example", "--all-matching", "--json").stdout)
    assert out["done"] == 1 and out["skipped"] == 1      # y1 held; the a.example+b.example one left
    held = [e for e in postfix.queue() if e["queue_name"] == "hold"]
    assert [r["address"] for e in held for r in e["recipients"]] == ["y1@b.example"]
    needs_domain = mrod.cli("queue", "delete", "--all-matching", "--yes", check=False)
    assert needs_domain.returncode == 2 and "domain" in needs_domain.stderr


async def test_the_api_for_a_domains_own_user(queued, aiohttp_client) -> None:
    """A domains_own user's token: only messages wholly in their domains, listed and held; an id
    of someone else's refused; delete needs "confirm": true."""
    mrod, cfg, postfix = queued
    async with db.opened(cfg.database) as conn:
        owner = await users.add(conn, SYSTEM, "owner", PASSWORD, perms=("domains_own",), rounds=4)
        await domains.update(conn, SYSTEM, "a.example", owner_id=owner.id)
        secret, _ = await tokens.create(conn, SYSTEM, owner.id, "t")
    client = await aiohttp_client(create_app(cfg))
    auth = {"Authorization": f"Bearer {secret}"}
    queue = await asyncio.to_thread(by_recipient, postfix)

    listed_ = await (await client.get("/api/v1/queue/messages", headers=auth)).json()
    mine = {queue[r]["queue_id"] for r in ("x1@a.example", "x2@sub.a.example", "x3@a.example")}
    assert {m["queue_id"] for m in listed_["messages"]} == mine and listed_["total"] == 3
    assert (await client.get("/api/v1/queue/messages?domain=b.example", headers=auth)).status == 404

    theirs = queue["y1@b.example"]["queue_id"]
    refused = await client.post("/api/v1/queue/messages/hold", json={"ids": [theirs]}, headers=auth)
    assert refused.status == 404 and "not yours" in (await refused.json())["error"]
    one = queue["x1@a.example"]["queue_id"]
    unconfirmed = await client.post("/api/v1/queue/messages/delete", json={"ids": [one]}, headers=auth)
    assert unconfirmed.status == 400 and (await unconfirmed.json())["field"] == "confirm"
    held = await client.post("/api/v1/queue/messages/hold", json={"ids": [one]}, headers=auth)
    assert held.status == 200 and (await held.json())["done"] == 1
    states = {e["queue_id"]: e["queue_name"] for e in await asyncio.to_thread(postfix.queue)}
    assert states[one] == "hold" and states[theirs] == "deferred"
    gone = await client.post("/api/v1/queue/messages/delete", json={"ids": [one], "confirm": True}, headers=auth)
    assert (await gone.json())["done"] == 1


def test_delete_asks_on_a_terminal(queued) -> None:
    """On a terminal `mrod queue delete` asks; "n" deletes nothing, "y" deletes."""
    mrod, cfg, postfix = queued
    one = by_recipient(postfix)["y1@b.example"]["queue_id"]

    def answer(text: str) -> subprocess.CompletedProcess[str]:
        leader, follower = os.openpty()
        try:
            os.write(leader, text.encode())
            return subprocess.run(mrod.command("queue", "delete", one), stdin=follower, capture_output=True,
                                  text=True, timeout=60, env=mrod._env())
        finally:
            os.close(leader)
            os.close(follower)

    kept = answer("n\n")
    assert kept.returncode == 1 and "Delete 1 message(s)?" in kept.stdout and "nothing deleted" in kept.stdout
    assert one in {e["queue_id"] for e in postfix.queue()}
    gone = answer("y\n")
    assert gone.returncode == 0 and "Postfix acted on 1 of 1" in gone.stdout
    postfix.wait_for_queue(lambda q: one not in {e["queue_id"] for e in q})
