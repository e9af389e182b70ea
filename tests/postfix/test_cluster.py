"""Two backup MX nodes on one PostgreSQL, as an operator runs them (issue 11 point 5).

Two mrod nodes (their own configs, ports, state directories and node names; their configs
have a `[database] url` and no `path`, as docs/cluster.md's first example; node A the real
`mrod lookupd`, node B all of `mrod serve` — lookupd, panel, jobs reading its own Postfix —,
both with the policy service on), two private Postfix instances each configured from
its own node's config (`postfixlines`: what `mrod postfix-config` gives), one private
PostgreSQL, the primary an SMTP sink on loopback. Node A made the database (`mrod init`); node
B only points at it (docs/cluster.md "Adding a node").

1. A domain and a listed recipient added through node A's CLI are relayed by node B's Postfix.
2. PostgreSQL stopped (and the primary down): both Postfix instances still accept and queue
   mail for the known domains — the lookups and the policy answer without the database —, and
   still refuse what they refused before (an unknown recipient, an unknown domain).
3. Node B restarted during the outage answers from its snapshot on disk (`mrod serve` starts
   without the database; its panel answers 503 until it is back) — the snapshot in var/ beside
   its config, the default state directory, which its start made.
4. The primary back: the queued mail of both nodes is delivered (node B flushes by itself,
   without the database).
5. PostgreSQL back: a change made on A (its CLI) reaches B's Postfix, with no restart.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.harness import free_port
from tests.harness.mrodproc import MrodProcess
from tests.harness.postfix import PostfixInstance, SmtpRejected
from tests.harness.postgres import Cluster
from tests.postfix.conftest import payload
from tests.postfix.test_delivery import SLOW_RETRIES, deferred_for

pytestmark = pytest.mark.postfix

WAIT = 20.0   # seconds: the bound of every wait (a change reaches the other node in milliseconds)


def _until(probe: Callable[[], Any], wanted: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while (got := probe()) != wanted:
        assert time.monotonic() < deadline, f"{what}: still {got!r} after {WAIT:g}s"
        time.sleep(0.05)


def _relayed(postfix: PostfixInstance, node: MrodProcess, name: str) -> str:
    """What this Postfix is told for the domain (relay_domains through its node's socketmap)."""
    return postfix.postmap_q(name, node.socketmap_table("relay_domains"))[1]


def _api_status(node: MrodProcess) -> int:
    """The panel's API answer to a token it must look up in the database."""
    request = urllib.request.Request(f"http://127.0.0.1:{node.admin_port}/api/v1/metrics",
                                     headers={"Authorization": "Bearer mrod_0000_not-a-real-token"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _refused(postfix: PostfixInstance, recipient: str) -> int:
    try:
        return postfix.rcpt_reply(recipient).code
    except SmtpRejected as exc:
        return exc.code


def test_two_nodes_on_one_postgresql(tmp_path: Path, private_cluster: Cluster, mrod_factory, postfix_factory,
                                     smtp_sink_factory) -> None:
    server = private_cluster
    database = {"url": server.url(server.new_database(migrated=False)), "password_file": str(server.password_file)}
    node_a = mrod_factory(database=database, node="mx-a", policy=f"127.0.0.1:{free_port()}",   # runs `mrod init`
                          database_path=False)
    # Node B is a whole node (`mrod serve`: lookupd, panel, jobs reading its own Postfix).
    node_b = mrod_factory(database=database, node="mx-b", policy=f"127.0.0.1:{free_port()}", init=False,
                          serve=True, start=False, database_path=False)
    for node in (node_a, node_b):    # the default state directory: var/ beside the config
        assert node.config.state_dir == node.directory / "var"
    primary = smtp_sink_factory("primary")
    postfix_a = postfix_factory(node_a.config, settings=SLOW_RETRIES)
    postfix_b = postfix_factory(node_b.config, settings=SLOW_RETRIES)
    node_b.add_section("postfix", config_dir=str(postfix_b.etc))
    node_b.add_section("health", interval=1.0)
    node_b.add_section("queue", interval=1.0)
    node_b.start()
    assert "check_policy_service" in postfix_b.postconf("smtpd_recipient_restrictions")

    # 1. A change through node A's CLI is relayed by node B's Postfix.
    node_a.cli("relay", "add", "primary", "--host", "127.0.0.1", "--port", str(primary.port))
    node_a.cli("domain", "add", "one.example", "--relay", "primary")
    node_a.cli("domain", "add", "listed.example", "--relay", "primary", "--recipients", "listed")
    node_a.cli("recipient", "add", "joe@listed.example")
    # Routed by its own host override: watched by the next-hop monitor, not the relay's.
    node_a.cli("domain", "add", "own.example", "--host", "127.0.0.1", "--port", str(primary.port))
    _until(lambda: _relayed(postfix_b, node_b, "one.example"), "one.example", "node B learns one.example")
    assert postfix_b.smtp(["ann@one.example"], payload("b-up", "ann@one.example")).code == 250
    assert [m.rcpt_tos for m in primary.wait_for(1)] == [("ann@one.example",)]
    _until(lambda: _refused(postfix_b, "joe@listed.example"), 250, "node B learns joe@listed.example")
    assert _refused(postfix_b, "bob@listed.example") == 550
    _until(lambda: _relayed(postfix_b, node_b, "own.example"), "own.example", "node B knows own.example")

    # 2. PostgreSQL gone (and the primary down): both nodes accept and queue for known domains.
    primary.stop()
    server.pause()
    sent: dict[str, list[str]] = {"a": [], "b": []}
    for key, postfix in (("a", postfix_a), ("b", postfix_b)):
        for rcpt in ("ann@one.example", "joe@listed.example"):
            reply = postfix.smtp([rcpt], payload(f"outage-{key}-{rcpt}", rcpt))
            assert reply.code == 250, (key, rcpt, reply)
            sent[key].append(rcpt)
        # What was refused before still is: the snapshot is complete, not "accept anything".
        assert _refused(postfix, "bob@listed.example") == 550
        assert _refused(postfix, "x@unknown.example") == 554
        postfix.wait_for_queue(lambda q: len(q) == 2 and deferred_for(q, "Connection refused"))
    for node in (node_a, node_b):    # the policy answered as configured (accept), not by closing
        assert "when_database_unreachable = 'accept'" in node.stderr_text()
    assert _api_status(node_b) == 503        # the panel runs, and says the database is gone
    # `mrod health` on a node tells how old its snapshot is, from local disk, then the error.
    health = node_b.cli("health", check=False)
    assert health.returncode == 1 and health.stdout.startswith("lookupd: routing snapshot"), health
    assert "database unreachable" in health.stdout and "cannot be used" in health.stderr

    reply = postfix_b.smtp(["ann@own.example"], payload("outage-b-own", "ann@own.example"))
    assert reply.code == 250
    sent["b"].append("ann@own.example")

    # 3. Node B restarted during the outage (all of `mrod serve`) answers from the snapshot it
    # kept on disk; its panel starts too, and answers 503 until the database is back.
    node_b.stop()
    assert (node_b.directory / "var" / "lookupd-snapshot.json").is_file()
    node_b.start()
    assert _api_status(node_b) == 503
    assert _relayed(postfix_b, node_b, "one.example") == "one.example"
    reply = postfix_b.smtp(["joe@listed.example"], payload("outage-b-restarted", "joe@listed.example"))
    assert reply.code == 250
    sent["b"].append("joe@listed.example")
    assert _refused(postfix_b, "bob@listed.example") == 550

    # 4. The primary back: everything queued on both nodes is delivered — on node B by mrod's own
    # auto-flush, still without the database (the relay's health monitor: the relay known from
    # its snapshot file, the queued domains routed through that snapshot; the next-hop monitor
    # for own.example's host override, routed the same way), on node A, which runs lookupd
    # alone, by the operator's flush.
    primary.start()
    postfix_a.flush()
    delivered = primary.wait_for(1 + len(sent["a"]) + len(sent["b"]), timeout=WAIT)[1:]
    assert sorted(m.rcpt_tos[0] for m in delivered) == sorted(sent["a"] + sent["b"])
    postfix_a.wait_for_queue(lambda q: q == [])
    postfix_b.wait_for_queue(lambda q: q == [])
    assert "(database unreachable: stored when it is back)" in node_b.stderr_text()

    # 5. PostgreSQL back: a change made on A now reaches B by itself (no restart).
    server.resume()
    node_a.cli("domain", "add", "two.example", "--relay", "primary")
    node_a.cli("recipient", "rm", "joe@listed.example")
    _until(lambda: _relayed(postfix_b, node_b, "two.example"), "two.example", "node B learns two.example")
    _until(lambda: _refused(postfix_b, "joe@listed.example"), 550, "node B forgets joe@listed.example")
    assert postfix_b.smtp(["ann@two.example"], payload("b-after", "ann@two.example")).code == 250
    _until(lambda: _api_status(node_b), 401, "node B's panel reaches the database again")
    health = node_a.cli("health", check=False)
    assert health.returncode == 0 and "(database reachable)" in health.stdout, health
    assert primary.wait_for(len(delivered) + 2)[-1].rcpt_tos == ("ann@two.example",)
