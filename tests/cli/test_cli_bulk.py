"""`mrod domain set A B C` / --filter / stdin, `mrod domain export`, `mrod domain import-csv`
(issue 13.5): one transaction, refusals change nothing, an export reads back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import dump


@pytest.fixture
def many(mrod):
    assert mrod("init").code == 0
    assert mrod("relay", "add", "old", "--host", "mx1.example.net").code == 0
    assert mrod("relay", "add", "new", "--host", "mx2.example.net").code == 0
    for i in range(5):
        assert mrod("domain", "add", f"d{i}.example", "--relay", "old").code == 0
    return mrod


def listed(mrod) -> dict[str, dict]:
    return {d["name"]: d for d in json.loads(mrod("domain", "list", "--json").out)}


def test_set_many_by_name_filter_and_stdin(many, mrod_proc) -> None:
    r = many("domain", "set", "d1.example", "d2.example", "--relay", "new", "--pause", "moving", "--recipients",
             "listed")
    assert r.code == 0 and "2 domain(s) changed" in r.out
    state = listed(many)
    assert [state[f"d{i}.example"]["relay_name"] for i in range(5)] == ["old", "new", "new", "old", "old"]
    assert state["d2.example"]["paused"] and state["d2.example"]["pause_reason"] == "moving"
    r = many("domain", "set", "--filter", "relay=old", "--filter", "q=d", "--disable", "--subdomains")
    assert r.code == 0 and "3 domain(s) changed" in r.out
    assert [d["enabled"] for d in listed(many).values()] == [False, True, True, False, False]
    r = mrod_proc("domain", "set", "-", "--unpause", input="d1.example, d2.example\n# a comment\n\n")
    assert r.code == 0 and "2 domain(s) changed" in r.out
    assert not any(d["paused"] for d in listed(many).values())
    # One domain keeps the one-domain answer.
    r = many("domain", "set", "d4.example", "--enable")
    assert r.code == 0 and r.out.startswith("domain d4.example: relay old, enabled")


def test_set_many_refusals_change_nothing(many, config_file: Path) -> None:
    before = dump(config_file)
    # Exit status (mrod.cli): 1 refused (a named domain is missing), 2 a bad value or command line.
    for args, code, message in (
        (["d1.example", "missing.example", "--disable"], 1, "domain 'missing.example' does not exist"),
        (["d1.example", "d2.example", "--quota-messages", "lots"], 2, "d1.example: must be a whole number"),
        (["--filter", "colour=red", "--disable"], 2, "expected KEY=VALUE"),
        (["--filter", "q=nothing-here", "--disable"], 2, "no domain matches the filter"),
        (["d1.example", "--filter", "relay=old", "--disable"], 2, "not both"),
        (["--disable"], 2, "name at least one domain"),
    ):
        r = many("domain", "set", *args)
        assert r.code == code and message in r.err and r.err.count("\n") == 1, (args, r.err)
    assert dump(config_file) == before


def test_export_and_import_csv(many, config_file: Path, tmp_path: Path) -> None:
    r = many("domain", "export", "--filter", "q=d1")
    assert r.code == 0 and r.out.splitlines()[1] == "d1.example,old,,,,,no,yes,no,accept_all,no,,,,accept,inherit,,manual,"
    everything = many("domain", "export").out
    path = tmp_path / "domains.csv"
    path.write_text(everything)
    before = dump(config_file)
    r = many("domain", "import-csv", str(path))
    assert r.code == 0 and "0 domain(s) were added, 0 changed, 5 unchanged" in r.out
    path.write_text(everything.replace("d3.example,old,", "d3.example,new,")
                    + "fresh.example,,mx9.example.net,2525,smtps,encrypt,no,no,no,verify,no,,10,,defer,,,manual,\n")
    r = many("domain", "import-csv", str(path), "--preview")
    assert r.code == 0 and "add fresh.example" in r.out and "change d3.example: relay_id, relay_name" in r.out
    assert "(preview: nothing written)" in r.out
    assert dump(config_file) == before
    path.write_text(path.read_text() + "bad..example,old,,,,,,,,,,,,,,,,,\n")
    r = many("domain", "import-csv", str(path))
    assert r.code == 1 and f"{path}:8: bad..example" in r.err and "nothing was imported" in r.err
    assert dump(config_file) == before
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    r = many("domain", "import-csv", str(path))
    assert r.code == 0 and "1 domain(s) were added, 1 changed, 4 unchanged" in r.out
    fresh = listed(many)["fresh.example"]
    assert (fresh["host"], fresh["port"], fresh["protocol"], fresh["tls"], fresh["enabled"], fresh["recipients"],
            fresh["quota_messages"], fresh["verify_when_down"]) == \
        ("mx9.example.net", 2525, "smtps", "encrypt", False, "verify", 10, "defer")
    r = many("domain", "import-csv", str(tmp_path / "absent.csv"))
    assert r.code == 1 and "No such file" in r.err
