"""The refresh job against real parts: a real named serving MX, ``_mta-sts`` TXT and the policy
host's address; an HTTPS policy host on loopback with a certificate from a test CA the fetcher
is told to trust ([mta_sts] ca_file). The answer lookupd gives is read from a snapshot brought
up to date by the change journal, as lookupd does."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mrod.answers import routing, snapshotjournal, snapshotsql
from mrod.answers.routestore import RouteStore
from mrod.entities import domains, relays
from mrod.infra import db, journal
from mrod.mtasts import cache
from mrod.mtasts.refresh import Refresher
from mrod.operations import checks, metrics
from tests.conftest import make_config
from tests.data import ACTOR
from tests.harness.named import Named, zone_text
from tests.harness.testca import TestCA
from tests.mtasts.conftest import PolicyHost, policy_text

pytestmark = pytest.mark.bind
US = "mx2.backup.test"


def _zone(name: str, sts_id: str | None = "1") -> str:
    txt = f'_mta-sts IN TXT "v=STSv1; id={sts_id}"\n' if sts_id else ""
    return f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.2\nmta-sts IN A 127.0.0.1\n{txt}"


NAMED_ZONES = {
    "backup.test": "mx2 IN A 127.0.0.1\n",
    "sts.test": _zone("sts.test"),
    "testing.test": _zone("testing.test"),
    "missing.test": _zone("missing.test"),
    "plain.test": _zone("plain.test", None),
    "broken.test": _zone("broken.test"),
    "badcert.test": _zone("badcert.test"),
    "change.test": _zone("change.test"),
    "relayed.test": _zone("relayed.test"),
}
# The policy host's certificate covers these (not badcert.test).
POLICY_DOMAINS = ["sts.test", "testing.test", "missing.test", "broken.test", "change.test", "relayed.test"]
ENFORCE = policy_text("enforce", "mail.sts.test", "*.backup.test")


@pytest.fixture
async def cfg(tmp_path: Path, named: Named, fresh_policies: PolicyHost, test_ca: TestCA, engine: str):
    config = make_config(tmp_path, checks={"mx_names": [US], "local_addresses": ["127.0.0.1"],
                                           "resolver": "127.0.0.1", "resolver_port": named.port, "timeout": 3.0},
                         mta_sts={"ca_file": str(test_ca.cert), "https_port": fresh_policies.port, "timeout": 5.0})
    p = fresh_policies.policies
    p["mta-sts.sts.test"] = (200, ENFORCE)
    p["mta-sts.testing.test"] = (200, policy_text("testing", "mail.testing.test"))
    p["mta-sts.missing.test"] = (200, policy_text("enforce", "mail.missing.test"))
    p["mta-sts.broken.test"] = (301, "https://elsewhere.test/")
    p["mta-sts.badcert.test"] = (200, ENFORCE)
    p["mta-sts.change.test"] = (200, policy_text("enforce", "mail.change.test"))
    p["mta-sts.relayed.test"] = (200, policy_text("enforce", "mail.relayed.test", US))
    async with db.opened(config.database, create=True) as conn:
        await relays.add(conn, ACTOR, name="primary", host="mail.relayed.test")
        for name in NAMED_ZONES:
            if name not in ("backup.test", "relayed.test"):
                await domains.add(conn, ACTOR, name, mx=True)
        await domains.add(conn, ACTOR, "relayed.test", relay="primary")
    return config


async def _refresh(cfg, domain: str | None = None, force: bool = False) -> dict[str, cache.Cached]:
    async with db.opened(cfg.database) as conn:
        return {c.domain: c for c in await Refresher(cfg).run(conn, domain, force=force)}


async def test_policies_are_fetched_verified_and_answered(cfg) -> None:
    found = await _refresh(cfg)
    sts = found["sts.test"]
    assert (sts.mode, sts.mx, sts.policy_id, sts.error) == ("enforce", ("mail.sts.test", "*.backup.test"), "1", None)
    assert sts.answer == "secure match=mail.sts.test:.backup.test servername=hostname"
    assert found["testing.test"].mode == "testing" and found["testing.test"].answer is None
    assert found["plain.test"].mode is None and found["plain.test"].error is None
    # No redirects (RFC 8461 §3.3), and a certificate that does not cover mta-sts.<domain> fails.
    assert found["broken.test"].answer is None and "HTTP 301" in (found["broken.test"].error or "")
    assert found["badcert.test"].answer is None and "Certificate" in (found["badcert.test"].error or "")
    # The figures for Prometheus.
    figures = {(m.name, tuple(sorted(sample.labels.items()))): sample.value
               for m in metrics.database_families(cfg.database) for sample in m.samples}
    assert figures[("mrod_mta_sts_policies", (("mode", "enforce"),))] == 4      # sts, missing, change, relayed
    assert figures[("mrod_mta_sts_policies", (("mode", "testing"),))] == 1
    assert figures[("mrod_mta_sts_failing", ())] == 2                            # broken, badcert
    assert figures[("mrod_mta_sts_dane", ())] == 0
    # What lookupd answers: from the database and from a snapshot alike.
    store = RouteStore.open(cfg.database.path)
    try:
        snap = snapshotsql.load(store.conn)
        for source in (store, snap):
            ans = routing.answer(source, "tls_policy", "sts.test")
            assert (ans.status, ans.value) == ("OK", sts.answer), ans.why
            assert routing.answer(source, "tls_policy", "testing.test").status == "NOTFOUND"
            # A relay's explicit host: the operator's setting stands.
            assert routing.answer(source, "tls_policy", "[mail.relayed.test]:25").status == "NOTFOUND"
    finally:
        store.close()


async def test_a_new_id_is_picked_up_by_the_next_refresh_and_the_next_lookup(cfg, named: Named,
                                                                             fresh_policies: PolicyHost) -> None:
    await _refresh(cfg)
    store = RouteStore.open(cfg.database.path)
    try:
        snap = snapshotsql.load(store.conn)
        assert routing.answer(snap, "tls_policy", "change.test").value.startswith("secure match=mail.change.test ")
        # The same id with a new policy: not fetched again (the id says nothing changed).
        new = policy_text("enforce", "mail.change.test", "mx9.change.test")
        fresh_policies.policies["mta-sts.change.test"] = (200, new)
        assert (await _refresh(cfg, "change.test"))["change.test"].mx == ("mail.change.test",)
        # A new id: fetched, stored, journaled, answered by the next lookup from the snapshot.
        zone = named.directory / "change.test.db"
        zone.write_text(zone_text("change.test", _zone("change.test", "2"), serial=2))
        named.process.send_signal(signal.SIGHUP)
        _wait_for_txt(named, "_mta-sts.change.test", "id=2")
        assert (await _refresh(cfg))["change.test"].mx == ("mail.change.test", "mx9.change.test")
        snapshotjournal.apply(snap, store.conn, journal.since(store.conn, snap.position, 1000) or [])
        assert routing.answer(snap, "tls_policy", "change.test").value == \
            "secure match=mail.change.test:mx9.change.test servername=hostname"
    finally:
        store.close()


@pytest.mark.both_engines      # the cache is shared by a cluster: its writes on PostgreSQL too
async def test_a_policy_that_cannot_be_fetched_stands_until_max_age(cfg, fresh_policies: PolicyHost) -> None:
    await _refresh(cfg, "sts.test")
    fresh_policies.policies["mta-sts.sts.test"] = (500, "down")
    kept = (await _refresh(cfg, "sts.test", force=True))["sts.test"]
    assert kept.answer is not None and "HTTP 500" in (kept.error or "") and "stands" in (kept.error or "")
    past = db.stamp(datetime.now(timezone.utc) - timedelta(seconds=1))
    async with db.opened(cfg.database) as conn, db.transaction(conn):
        await conn.execute("UPDATE mta_sts SET expires_at = ? WHERE domain = 'sts.test'", (past,))
    gone = (await _refresh(cfg, "sts.test", force=True))["sts.test"]
    assert (gone.answer, gone.mode) == (None, None)


@pytest.mark.both_engines
async def test_findings_say_what_the_backup_lacks(cfg) -> None:
    await _refresh(cfg)
    async with db.opened(cfg.database) as conn:
        results = {r.domain: r for r in await checks.run(cfg, conn)}

    def codes(domain: str) -> dict[str, str]:
        return {f.code: f.level for f in results[domain].findings}

    assert codes("missing.test") == {"sts-mx-missing": "error"}
    assert codes("testing.test") == {"sts-mx-missing": "warning"}
    assert codes("sts.test") == {}          # *.backup.test covers mx2.backup.test
    assert codes("relayed.test") == {"sts-stricter-than-relay": "warning"}
    fix = next(f.fix for f in results["missing.test"].findings)
    assert f"mx: {US}" in fix


def _wait_for_txt(named: Named, name: str, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = named.answers(name, "TXT")
        if reply is not None and any(text in rr.to_text() for rrset in reply.answer for rr in rrset):
            return
        time.sleep(0.1)
    raise AssertionError(f"named did not serve {text} for {name}: {named.log_tail()}")


async def test_mrod_serve_runs_the_refresh_as_a_job(cfg) -> None:
    from mrod.infra import config as configmod
    from mrod.operations import servejobs

    job = {j.name: j for j in servejobs.jobs(cfg)}["mta-sts"]
    await job.run()
    async with db.opened(cfg.database) as conn:
        found = await cache.cached(conn, "sts.test")
    assert found is not None and (found.answer or "").startswith("secure match=")
    off = configmod.from_dict({"mta_sts": {"enabled": False}})
    assert "mta-sts" not in [j.name for j in servejobs.jobs(off)]
