"""Accept only when needed (issue 20.1): the decision table of the mode while the primary is
up, on both paths — mrod.answers.policy (the database) and mrod.answers.policymemory (lookupd's
snapshot, no database) — which must give the same answer wherever memory decides."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mrod.answers import policy, policymemory, primaryup, routing, snapshotfile, snapshotjournal, snapshotsql
from mrod.answers.snapshot import RouteSnapshot
from mrod.answers.snapshotpolicy import PLAIN
from mrod.infra import db, journal
from mrod.infra.config import PolicyConfig
from tests.data import seed_file

SETTINGS = PolicyConfig(exempt_networks=("192.0.2.0/24", "2001:db8::/32"))
DEFER = "DEFER_IF_PERMIT This is a backup MX for {}; deliver to its primary mail server"
INTERVAL = 60.0


async def build(path: Path) -> None:
    await seed_file(
        path,
        relays=[dict(name="up", host="mx-up.example.net", when_primary_up="defer"),
                dict(name="down", host="mx-down.example.net", when_primary_up="defer"),
                dict(name="stale", host="mx-stale.example.net", when_primary_up="defer"),
                dict(name="never", host="mx-never.example.net", when_primary_up="defer"),
                dict(name="upaccept", host="mx-acc.example.net")],
        domains=[dict(name="up.example", relay="up", include_subdomains=True),
                 dict(name="keep.example", relay="up", when_primary_up="accept"),
                 dict(name="down.example", relay="down"),
                 dict(name="stale.example", relay="stale"),
                 dict(name="never.example", relay="never"),
                 dict(name="acc.example", relay="upaccept"),
                 dict(name="own.example", relay="upaccept", when_primary_up="defer"),
                 dict(name="host.example", host="mx-host.example.net", when_primary_up="defer"),
                 dict(name="mx.example", mx=True, when_primary_up="defer"),
                 dict(name="paused.example", relay="up", paused=True, pause_reason="moving"),
                 dict(name="quota.example", relay="up", quota_messages=100),
                 dict(name="verify.example", relay="up", recipients="verify")])
    now = datetime.now(timezone.utc)
    with sqlite3.connect(path) as raw:
        rid = dict(raw.execute("SELECT name, id FROM relay"))
        for name, state, probed in (("up", "up", now), ("upaccept", "up", now), ("down", "down", now),
                                    ("stale", "up", now - timedelta(seconds=4 * INTERVAL))):
            raw.execute("INSERT INTO relay_health (relay_id, node, state, last_probe_at) VALUES (?, '', ?, ?)",
                        (rid[name], state, db.stamp(probed)))


@pytest.fixture
async def store(tmp_path: Path):
    path = tmp_path / "p.db"
    await build(path)
    s = policy.PolicyStore.open(path)
    yield s
    s.close()


def rcpt(recipient: str, client: str = "198.51.100.7") -> dict[str, str]:
    return {"request": "smtpd_access_policy", "protocol_state": "RCPT", "recipient": recipient,
            "client_address": client, "sender": "someone@else.example"}


CASES = [
    (rcpt("a@up.example"), DEFER.format("up.example"), "primary-up-defer"),
    (rcpt("a@sub.up.example"), DEFER.format("up.example"), "primary-up-defer"),
    (rcpt("Postmaster@up.example"), "DUNNO", "postmaster"),
    (rcpt("a@up.example", "192.0.2.44"), "DUNNO", "exempt-client"),
    (rcpt("a@up.example", "2001:db8::25"), "DUNNO", "exempt-client"),
    (rcpt("a@up.example", "::ffff:192.0.2.44"), "DUNNO", "exempt-client"),
    (rcpt("a@up.example", "2001:db9::25"), DEFER.format("up.example"), "primary-up-defer"),
    (rcpt("a@up.example", "unknown"), DEFER.format("up.example"), "primary-up-defer"),
    (rcpt("a@keep.example"), "DUNNO", "dunno"),                 # the domain's own accept wins
    (rcpt("a@down.example"), "DUNNO", "primary-down-accept"),
    (rcpt("a@stale.example"), "DUNNO", "health-unknown-accept"),     # up, but probed too long ago
    (rcpt("a@never.example"), "DUNNO", "health-unknown-accept"),     # never probed on this node
    (rcpt("a@acc.example"), "DUNNO", "dunno"),                  # the relay's accept (the default)
    (rcpt("a@own.example"), DEFER.format("own.example"), "primary-up-defer"),   # the domain's defer
    (rcpt("a@host.example"), "DUNNO", "health-unknown-accept"),  # a host override: nothing probes it
    (rcpt("a@mx.example"), "DUNNO", "health-unknown-accept"),
    (rcpt("a@paused.example"), "DEFER_IF_PERMIT Mail for paused.example is paused on this backup MX: moving",
     "paused"),
    (rcpt("a@elsewhere.example"), "DUNNO", "not-ours"),
]


@pytest.mark.parametrize("request_,action,reason", CASES)
async def test_decision_table(store: policy.PolicyStore, request_: dict, action: str, reason: str) -> None:
    primaries = policy.StoredPrimaries(store, "", INTERVAL)
    result = policy.evaluate(store, request_, SETTINGS, primaries=primaries)
    assert isinstance(result, policy.Decision), result
    assert (result.action, result.reason) == (action, reason)
    # Memory decides the same, from a snapshot without any database behind it (snap.sql is None:
    # a read would raise), or leaves it to the database (paused, quota, verify).
    snap = snapshotsql.load(store.conn)
    memory = policymemory.decide(snap, request_, SETTINGS, routing.DEFAULT_OPTIONS, _Frozen(primaries))
    if "paused" in request_["recipient"]:
        assert memory is None
    else:
        assert memory == result


class _Frozen:
    """The states as they are now, held in memory (as lookupd's PrimaryHealth holds them)."""

    def __init__(self, stored: policy.StoredPrimaries) -> None:
        self.interval = stored.interval
        self.states = {name: stored.health(name) for name in ("up", "down", "stale", "never", "upaccept")}

    def health(self, relay_name: str) -> primaryup.Health | None:
        return self.states.get(relay_name)


async def test_quota_and_verify_go_to_the_database(store: policy.PolicyStore) -> None:
    snap = snapshotsql.load(store.conn)
    frozen = _Frozen(policy.StoredPrimaries(store, "", INTERVAL))
    for address in ("a@quota.example", "a@verify.example", "a@paused.example"):
        assert policymemory.decide(snap, rcpt(address), SETTINGS, routing.DEFAULT_OPTIONS, frozen) is None
    # A [policy] default quota applies to every domain without its own: all go to the database.
    with_default = PolicyConfig(default_quota_messages=10)
    assert policymemory.decide(snap, rcpt("a@up.example"), with_default, routing.DEFAULT_OPTIONS,
                               frozen) is None
    # Primary up and defer: no callout for a verify domain (step 3 comes before 4).
    result = policy.evaluate(store, rcpt("new@verify.example"), SETTINGS,
                             primaries=policy.StoredPrimaries(store, "", INTERVAL))
    assert isinstance(result, policy.Decision) and result.reason == "primary-up-defer"
    # A snapshot without policy fields (an older snapshot file): always the database.
    assert policymemory.decide(RouteSnapshot(), rcpt("a@up.example"), SETTINGS, routing.DEFAULT_OPTIONS,
                               frozen) is None


async def test_the_snapshot_follows_mode_changes_through_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    await build(path)
    conn = db.open_readonly(path, 1000)
    try:
        snap = snapshotsql.load(conn)
        with sqlite3.connect(path) as raw:
            raw.execute("UPDATE relay SET when_primary_up = 'accept' WHERE name = 'up'")
            raw.execute("UPDATE domain SET when_primary_up = 'defer' WHERE name = 'acc.example'")
            raw.execute("UPDATE domain SET paused = 1 WHERE name = 'down.example'")
        changes = journal.since(conn, snap.position, 100)
        assert changes
        snapshotjournal.apply(snap, conn, changes)
    finally:
        conn.close()
    assert snap.policy is not None
    assert snap.policy.relays["up"] == "accept"
    ids = {name: packed & 0xFFFFFFFF for name, packed in snap.domains.items()}
    assert snap.policy.flags(ids["acc.example"]).when_primary_up == "defer"
    assert snap.policy.flags(ids["down.example"]).paused
    assert snap.policy.flags(ids["up.example"]) == PLAIN


def test_state_staleness_and_networks() -> None:
    assert primaryup.state(None, 1000.0, 60) == "unknown"
    assert primaryup.state(("up", None), 1000.0, 60) == "unknown"
    assert primaryup.state(("up", 1000.0 - 179), 1000.0, 60) == "up"
    assert primaryup.state(("up", 1000.0 - 181), 1000.0, 60) == "unknown"
    assert primaryup.state(("down", 990.0), 1000.0, 60) == "down"
    nets = primaryup.networks(("10.0.0.0/8", "::1/128"))
    assert primaryup.exempt("10.1.2.3", nets) and primaryup.exempt("::1", nets)
    assert not primaryup.exempt("11.1.2.3", nets) and not primaryup.exempt("garbage", nets)
    assert primaryup.mode("inherit", None) == "accept" and primaryup.mode("inherit", "defer") == "defer"
    assert primaryup.mode("accept", "defer") == "accept"


def test_exempt_networks_load_both_families(tmp_path: Path) -> None:
    from mrod.infra import config as configmod
    path = tmp_path / "mrod.toml"
    path.write_text(f'[database]\npath = "{tmp_path / "m.db"}"\n'
                    '[policy]\nexempt_networks = ["192.0.2.10", " 2001:db8::/48"]\n')
    assert configmod.load(path, env={}).policy.exempt_networks == ("192.0.2.10", "2001:db8::/48")


async def test_the_snapshot_file_keeps_the_policy_fields(tmp_path: Path) -> None:
    """lookupd on PostgreSQL restarts from its file: the policy fields come back with it; a file
    written before them gives a snapshot that leaves every decision to the database."""
    path = tmp_path / "p.db"
    await build(path)
    conn = db.open_readonly(path, 1000)
    try:
        snap = snapshotsql.load(conn)
    finally:
        conn.close()
    state = snapshotfile.state(snap)
    back = snapshotfile.from_state(json.loads(json.dumps(state)))
    assert back.policy is not None and snap.policy is not None
    assert back.policy.domains == snap.policy.domains and back.policy.relays == snap.policy.relays
    del state["policy"]
    assert snapshotfile.from_state(state).policy is None
