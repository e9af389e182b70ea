"""The precomputed replies (mrod/answers/precomputed.py, issue 23) say what routing.py says, for
every key of a generated set, on SQLite and PostgreSQL snapshots, before and after changes
applied from the change journal — with the same Quick object, which must notice them."""

from __future__ import annotations

import random
from typing import Any

from mrod.answers import routing, snapshotfile, snapshotjournal, snapshotsql
from mrod.answers.precomputed import Quick
from mrod.answers.snapshot import RouteSnapshot
from mrod.entities import domains, recipients, relays
from mrod.infra import db, journal
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from tests.data import ACTOR

RELAYS: list[dict[str, Any]] = [dict(name="primary", host="mx1.example.net", port=25, tls="encrypt"),
          dict(name="tls465", host="mx2.example.net", port=465, protocol="smtps"),
          dict(name="v6", host="2001:db8::25", port=2525, tls="verify"),
          dict(name="plain", host="mx3.example.net")]
OPTIONS = [routing.DEFAULT_OPTIONS, routing.Options(recipient_delimiter="+-", relay_transport="smtp",
                                                     smtps_transport="tls-out", accept_postmaster=False)]


def _spec(rng: random.Random, i: int) -> dict[str, Any]:
    route = rng.choice(["relay", "relay", "relay", "host", "host-shared", "mx"])
    spec: dict[str, Any] = {}
    if route == "relay":
        spec["relay"] = rng.choice(RELAYS)["name"]
    elif route == "host":
        spec.update(host=f"10.0.{i % 3}.{i % 5}", port=rng.choice([25, 2526]),
                    tls=rng.choice(["may", "encrypt", "secure"]))
    elif route == "host-shared":      # an override on a relay's own nexthop
        spec.update(host="mx1.example.net", port=25, tls=rng.choice(["may", "verify"]))
        if rng.random() < 0.3:
            spec.update(port=465, protocol="smtps")
    else:
        spec.update(mx=True, tls=rng.choice(["may", "encrypt", "verify", "secure"]))
    spec["enabled"] = rng.random() > 0.2
    spec["include_subdomains"] = rng.random() < 0.3
    spec["recipients"] = rng.choice(["accept_all", "accept_all", "listed", "verify"])
    return spec


NAMES = [f"d{i}.example" for i in range(30)] + [f"s{i}.d{i}.example" for i in range(0, 30, 3)] + [
    "bücher.example", "x.y.z.deep.example", "deep.example", "a-b.example.org", "example.org"]


async def _seed(conn: Connection, rng: random.Random) -> None:
    for relay in RELAYS:
        await relays.add(conn, ACTOR, **relay)
    for i, name in enumerate(NAMES):
        await domains.add(conn, ACTOR, name, **_spec(rng, i))
    for name in NAMES[:20:4]:
        for address in (f"joe@{name}", f"Sales@{name}", f'"john doe"@{name}', f"@{name}"):
            try:
                await recipients.add(conn, ACTOR, address)
            except Exception:   # noqa: BLE001 - a domain that does not list recipients refuses them
                pass


def _keys(snap: RouteSnapshot) -> list[tuple[str, str]]:
    stored = sorted(snap.domains)
    hosts = ["mx1.example.net", "mx2.example.net", "mx3.example.net", "2001:db8::25", "10.0.0.0", "10.0.1.1",
             "10.0.2.2", "nowhere.example"]
    domain_keys = ["", ".", "*", "@", "[192.0.2.1]", "com", "example", "unknown.example", "a.unknown.example",
                   "bücher.example", "BÜCHER.example", "xn--bcher-kva.example", "xn--bcher-kva.example.",
                   "\u00e9t\u00e9.example", "x" * 300 + ".example", "a" * 63 + "." + "b" * 200 + ".example",
                   "s0.d0.example.", "UPPER.D1.EXAMPLE", "..d2.example", "d3.example..", "123.456", "-x.example",
                   "a.b.c.d.e.f.deep.example", "xn--.example", "x.example.org", "y.a-b.example.org"]
    for name in stored:
        domain_keys += [name, name.upper(), name + ".", f"sub.{name}", f"a.b.{name}", f".{name}"]
    keys: list[tuple[str, str]] = []
    for name in domain_keys:
        keys += [("relay_domains", name), ("tls_policy", name), ("tls_policy", f"{name}:25")]
        for local in ("user", "User+ext", "postmaster", "a+b+c", '"john doe"', "joe", "sales-x", "", "@x"):
            keys += [("transport", f"{local}@{name}"), ("relay_recipients", f"{local}@{name}")]
    keys += [("transport", k) for k in ("*", "", "@", "user", "user@", "a@b@d1.example", "d1.example")]
    for host in hosts:
        for port in ("", ":25", ":465", ":2525", ":2526", ":x", "x"):
            keys.append(("tls_policy", f"[{host}]{port}"))
            keys.append(("tls_policy", f"[{host.upper()}]{port}"))
    keys += [("tls_policy", k) for k in ("[ipv6:2001:db8::25]:2525", "[2001:DB8::25]:2525", "[]", "[", "")]
    keys += [("nosuch", "d1.example"), ("", "d1.example")]
    return keys


def _compare(snap: RouteSnapshot, quick: list[Quick[tuple[str, str]]]) -> int:
    """Every key through both paths; returns how many the precomputed path answered."""
    answered = 0
    for q in quick:
        for m, k in _keys(snap):
            found = q.lookup(m, k)
            if found is None:
                continue
            answered += 1
            expected = routing.answer(snap, m, k, q.options)
            assert found == (expected.status, (expected.status, expected.value)), (m, k, expected.why)
    return answered


def _assert_common_keys_are_precomputed(snap: RouteSnapshot, quick: Quick[tuple[str, str]]) -> None:
    """What Postfix asks most — stored names, user@name, names that are no domain — never
    needs routing.py."""
    for name in [*snap.domains, "unknown.example", "a.b.unknown.example"]:
        for m, k in (("relay_domains", name), ("transport", f"user+x@{name}"), ("tls_policy", name),
                     ("transport", "user")):
            assert quick.lookup(m, k) is not None, (m, k)


def _pair(status: str, value: str) -> tuple[str, str]:
    return status, value


def _load(cfg: Config) -> RouteSnapshot:
    conn = db.open_sync(cfg.database)
    try:
        return snapshotsql.load(conn, recipients=True)
    finally:
        conn.close()


def _catch_up(cfg: Config, snap: RouteSnapshot) -> None:
    conn = db.open_sync(cfg.database)
    try:
        changes = journal.since(conn, snap.position, 1000)
        assert changes, "the writers recorded nothing"
        snapshotjournal.install(snap, snapshotjournal.read_changes(conn, changes, recipients=True))
    finally:
        conn.close()


async def test_precomputed_replies_equal_routing_for_every_key(cfg: Config, conn: Connection) -> None:
    await _seed(conn, random.Random(23))
    snap = _load(cfg)
    quick = [Quick(snap, o, _pair) for o in OPTIONS]
    assert _compare(snap, quick) > 1000
    _assert_common_keys_are_precomputed(snap, quick[0])

    # Changes through mrod's writers, taken in from the journal; the same Quick objects.
    await relays.update(conn, ACTOR, "primary", {"host": "mx9.example.net", "port": 2500, "tls": "secure"})
    await relays.update(conn, ACTOR, "tls465", {"protocol": "smtp", "tls": "may"})
    await domains.update(conn, ACTOR, "d1.example", relay="plain", include_subdomains=True, enabled=True)
    await domains.update(conn, ACTOR, "d2.example", host="10.9.9.9", port=2526, tls="verify")
    await domains.update(conn, ACTOR, "deep.example", include_subdomains=True, enabled=False)
    await domains.update(conn, ACTOR, "d4.example", mx=True, tls="encrypt")
    await domains.remove(conn, ACTOR, "d5.example")
    await domains.remove(conn, ACTOR, "example.org")
    await domains.add(conn, ACTOR, "new.example", host="mx1.example.net", port=25, tls="secure")
    await domains.add(conn, ACTOR, "wide.example.org", relay="v6", include_subdomains=True)
    await relays.add(conn, ACTOR, name="later", host="mx3.example.net", tls="verify")
    _catch_up(cfg, snap)
    assert "d5.example" not in snap.domains and "new.example" in snap.domains
    assert _compare(snap, quick) > 1000
    _assert_common_keys_are_precomputed(snap, quick[0])
    # The answers did change where the edits say (so the comparison above saw the new state).
    q = quick[0]
    assert q.lookup("transport", "a@d0.example") is not None
    assert q.lookup("relay_domains", "x.d1.example") == ("OK", ("OK", "d1.example"))
    assert q.lookup("relay_domains", "deep.example") == ("NOTFOUND", ("NOTFOUND", ""))
    assert q.lookup("transport", "a@d5.example") == ("NOTFOUND", ("NOTFOUND", ""))
    assert q.lookup("tls_policy", "[mx9.example.net]:2500") == ("OK", ("OK", "secure"))
    assert q.lookup("transport", "u@d4.example") == ("OK", ("OK", "relay:d4.example"))

    # A relay edit alone (no new shape): every domain of that relay answers anew.
    await relays.update(conn, ACTOR, "plain", {"host": "mx7.example.net", "port": 26})
    _catch_up(cfg, snap)
    assert _compare(snap, quick) > 1000
    assert q.lookup("transport", "u@d1.example") == ("OK", ("OK", "relay:[mx7.example.net]:26"))

    # A snapshot loaded afresh agrees with the one kept up to date, and so does the one lookupd
    # on PostgreSQL reads back from its file.
    fresh = _load(cfg)
    assert set(fresh.wide) == set(snap.wide) and snap.wide      # (shape indexes differ: compare names)
    assert snapshotfile.from_state(snapshotfile.state(snap)).wide == snap.wide
    for m, k in _keys(fresh):
        a, b = routing.answer(fresh, m, k), routing.answer(snap, m, k)
        assert (a.status, a.value) == (b.status, b.value), (m, k)


async def test_a_published_mta_sts_or_dane_policy_is_answered_as_routing_does(cfg: Config, conn: Connection) -> None:
    """A destination's cached MTA-STS/DANE answer (snapshot.mta_sts, mrod.mtasts): the bare-domain
    tls_policy key then goes to routing.py (which weighs it against the domain's own tls), the
    others stay precomputed, and both paths agree for every key."""
    await _seed(conn, random.Random(5))
    await domains.add(conn, ACTOR, "sts.example", mx=True, tls="encrypt")
    await domains.add(conn, ACTOR, "dane.example", mx=True)
    snap = _load(cfg)
    snap.mta_sts.update({"sts.example": "secure match=.mx.sts.example servername=hostname",
                         "dane.example": "dane", "d1.example": "dane"})
    quick = [Quick(snap, o, _pair) for o in OPTIONS]
    assert _compare(snap, quick) > 1000
    q = quick[0]
    assert q.lookup("tls_policy", "sts.example") is None and q.lookup("tls_policy", "dane.example") is None
    assert routing.answer(snap, "tls_policy", "sts.example").value.startswith("secure match=")
    assert routing.answer(snap, "tls_policy", "dane.example").value == "dane"
    assert q.lookup("transport", "u@sts.example") == ("OK", ("OK", "relay:sts.example"))

