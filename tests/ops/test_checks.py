"""DNS checks against a real BIND (named on a loopback port) serving correct and broken MX
set-ups. This host is mx2.backup.test, and its address is 127.0.0.1 ([checks] local_addresses);
the primaries live at other loopback addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrod.operations import checks
from mrod.infra import db
from mrod.entities import domains, relays
from tests.data import ACTOR
from tests.conftest import make_config
from tests.harness import free_port
from tests.harness.named import Named

pytestmark = pytest.mark.bind
US = "mx2.backup.test"

NAMED_ZONES = {
    "backup.test": "mx2 IN A 127.0.0.1\nloop-host IN A 127.0.0.1\n",
    "good.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.2\n",
    "nomx.test": "@ IN A 127.0.0.2\n",
    "notours.test": "@ IN MX 10 mail\n@ IN MX 20 mx9.elsewhere.test.\nmail IN A 127.0.0.2\n",
    "pref.test": f"@ IN MX 20 mail\n@ IN MX 10 {US}.\nmail IN A 127.0.0.2\n",
    "samepref.test": f"@ IN MX 10 mail\n@ IN MX 10 {US}.\nmail IN A 127.0.0.2\n",
    "loop.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.2\n",
    "mxonly.test": f"@ IN MX 10 {US}.\n",
    "mxgood.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.3\n",
    # An MX under another name that is really this host (by address): a loop for MX routing.
    "mxalias.test": f"@ IN MX 10 alias\n@ IN MX 20 {US}.\nalias IN A 127.0.0.1\n",
    "txt.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.2\n@ IN TXT \"mrodxmailrelay=primary\"\n",
    "txtgone.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.2\n",
    "txtbad.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.2\n@ IN TXT \"mrodxmailrelay=nosuch\"\n",
    "txtother.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\nmail IN A 127.0.0.2\n@ IN TXT \"mrodxmailrelay=loopy\"\n",
    "nullmx.test": "@ IN MX 0 .\n",
    "unresolvable.test": f"@ IN MX 10 mail\n@ IN MX 20 {US}.\n",
}


@pytest.fixture
async def setup(tmp_path: Path, named: Named):
    cfg = make_config(tmp_path, checks={"mx_names": [US], "local_addresses": ["127.0.0.1"],
                                        "resolver": "127.0.0.1", "resolver_port": named.port, "timeout": 3.0})
    async with db.opened(cfg.database, create=True) as conn:
        await relays.add(conn, ACTOR, name="primary", host="mail.good.test")
        await relays.add(conn, ACTOR, name="loopy", host="loop-host.backup.test")
        await relays.add(conn, ACTOR, name="ip-loop", host="127.0.0.1", port=2525)
        await relays.add(conn, ACTOR, name="ghost", host="mail.unresolvable.test")
        for name in ("good.test", "nomx.test", "notours.test", "pref.test", "samepref.test", "nullmx.test",
                     "nothere.good.test"):
            await domains.add(conn, ACTOR, name, relay="primary")
        await domains.add(conn, ACTOR, "loop.test", relay="loopy")
        await domains.add(conn, ACTOR, "unresolvable.test", relay="ghost")
        await domains.add(conn, ACTOR, "sub.loop.test", relay="ip-loop")
        await domains.add(conn, ACTOR, "mxonly.test", mx=True)
        await domains.add(conn, ACTOR, "mxgood.test", mx=True)
        await domains.add(conn, ACTOR, "mxalias.test", mx=True)
        for name in ("txt.test", "txtgone.test", "txtbad.test", "txtother.test"):
            await domains.add(conn, ACTOR, name, relay="primary", route="dns-txt")
        # Not served by this named (REFUSED): a DNS failure, not a verdict.
        await domains.add(conn, ACTOR, "unserved.example", relay="primary")
    return cfg


async def _run(cfg) -> dict[str, checks.DomainCheck]:
    async with db.opened(cfg.database) as conn:
        return {r.domain: r for r in await checks.run(cfg, conn)}


def codes(result: checks.DomainCheck) -> set[str]:
    return {f.code for f in result.findings}


@pytest.mark.parametrize("domain, status, expected", [
    ("good.test", "ok", set()),
    ("mxgood.test", "ok", set()),
    ("txt.test", "ok", set()),
    ("nomx.test", "error", {"no-mx"}),
    ("nothere.good.test", "error", {"nxdomain"}),
    ("nullmx.test", "error", {"null-mx"}),
    ("notours.test", "error", {"not-our-mx"}),
    ("pref.test", "error", {"preference"}),
    ("samepref.test", "error", {"preference"}),
    ("loop.test", "error", {"loop"}),
    ("sub.loop.test", "error", {"nxdomain", "loop"}),
    ("mxonly.test", "error", {"only-mx", "loop"}),
    ("mxalias.test", "error", {"only-mx", "loop"}),
    ("unresolvable.test", "error", {"nexthop-unresolvable"}),
    ("txtgone.test", "error", {"txt-missing"}),
    ("txtbad.test", "error", {"txt-unknown-relay"}),
    ("txtother.test", "warning", {"txt-mismatch"}),
    ("unserved.example", "warning", {"dns-failure"}),
])
async def test_checks(setup, domain: str, status: str, expected: set[str]) -> None:
    result = (await _run(setup))[domain]
    assert (result.status, codes(result)) == (status, expected), result.findings
    for finding in result.findings:
        assert finding.message
        assert finding.fix


async def test_findings_say_what_to_fix(setup) -> None:
    found = await _run(setup)
    [pref] = found["pref.test"].findings
    assert "(mx2.backup.test, MX 10)" in pref.message
    assert "(mail.pref.test, MX 20)" in pref.message
    assert "`pref.test. MX 30 mx2.backup.test.`" in pref.fix
    [missing] = found["notours.test"].findings
    assert f"`notours.test. MX 30 {US}.`" in missing.fix
    [loop] = found["loop.test"].findings
    assert "loops back to myself" in loop.message
    assert "relay loopy" in loop.fix
    [nomx] = found["nomx.test"].findings
    assert f"MX 20 {US}." in nomx.fix


async def test_results_are_stored_and_replaced(setup) -> None:
    await _run(setup)
    async with db.opened(setup.database) as conn:
        stored = await checks.results(conn)
        statuses = await checks.statuses(conn)
        assert stored[0]["status"] == "error"
        assert stored[-1]["status"] == "ok"
        by_name = {r["domain"]: r for r in stored}
        assert by_name["pref.test"]["findings"][0]["code"] == "preference"
        domain = await domains.get(conn, "good.test")
        assert statuses[domain.id] == "ok"
        # One domain again: only its row changes.
        await checks.run(setup, conn, "nomx.test")
        assert len(await checks.results(conn)) == len(stored)


async def test_without_our_names_nothing_is_guessed(tmp_path: Path, named: Named) -> None:
    cfg = make_config(tmp_path, checks={"resolver": "127.0.0.1", "resolver_port": named.port})
    async with db.opened(cfg.database, create=True) as conn:
        await relays.add(conn, ACTOR, name="primary", host="mail.good.test")
        await domains.add(conn, ACTOR, "good.test", relay="primary")
        [result] = await checks.run(cfg, conn)
    assert result.status == "ok"
    assert codes(result) == {"no-mx-names"}


async def test_our_addresses_default_to_those_of_our_names(tmp_path: Path, named: Named) -> None:
    cfg = make_config(tmp_path, checks={"mx_names": [US], "resolver": "127.0.0.1", "resolver_port": named.port})
    async with db.opened(cfg.database, create=True) as conn:
        await relays.add(conn, ACTOR, name="loopy", host="loop-host.backup.test")
        await domains.add(conn, ACTOR, "loop.test", relay="loopy")
        [result] = await checks.run(cfg, conn)
    assert codes(result) == {"loop"}


async def test_a_dead_resolver_is_a_warning_not_a_verdict(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, checks={"mx_names": [US], "local_addresses": ["127.0.0.1"],
                                        "resolver": "127.0.0.1", "resolver_port": free_port(), "timeout": 1.0})
    async with db.opened(cfg.database, create=True) as conn:
        await relays.add(conn, ACTOR, name="primary", host="mail.good.test")
        await domains.add(conn, ACTOR, "good.test", relay="primary")
        [result] = await checks.run(cfg, conn)
    assert result.status == "warning"
    assert codes(result) == {"dns-failure"}
