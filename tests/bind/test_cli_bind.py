"""``mrod import-bind [--dry-run] [--json] [--history]`` against a real named; the periodic job
of ``mrod serve``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities import domains
from mrod.bindimport.job import BindImportJob
from mrod.cli import main
from mrod.cli.server import components
from tests.harness.named import Named, zone_text

pytestmark = pytest.mark.bind

ZONES = {
    "one.example": zone_text("one.example", '@ TXT "mrodxmailrelay=primary"\n'),
    "two.example": zone_text("two.example", "@ MX 10 mx.two.example.\nmx A 192.0.2.1\n"),
    "three.example": zone_text("three.example"),
}


def write_config(tmp_path: Path, named: Named, **bind: str) -> Path:
    path = tmp_path / "mrod.toml"
    extra = "".join(f"{k} = {v}\n" for k, v in bind.items())
    path.write_text(
        '[database]\npath = "var/mrod.db"\n[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n'
        '[admin]\nlisten = "127.0.0.1:0"\n'
        f'[bind]\nnamed_conf = "{named.conf}"\nresolver = "127.0.0.1"\nresolver_port = {named.port}\n' + extra)
    return path


@pytest.fixture
def cli(start_named, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    named = start_named(ZONES)
    config = write_config(tmp_path, named)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("init")[0] == 0
    assert run("relay", "add", "primary", "--host", "mx1.example.net")[0] == 0
    run.named = named          # type: ignore[attr-defined]
    run.db = tmp_path / "var" / "mrod.db"   # type: ignore[attr-defined]
    return run


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def test_dry_run_prints_the_plan_and_writes_nothing(cli) -> None:
    before = dump(cli.db)
    code, out, err = cli("import-bind", "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("read     ") and lines[0].endswith("(named-checkconf -p)")
    assert [ln.split()[:2] for ln in lines[1:4]] == [["add", "one.example"], ["add", "two.example"],
                                                     ["problem", "three.example"]]
    assert "new zone" in lines[1] and "dns-txt: relay primary" in lines[1]
    assert lines[-1].startswith("dry run (") and lines[-1].endswith(
        "2 added, 0 updated, 0 disabled, 0 deleted, 0 unchanged, 0 skipped, 1 problems; nothing was written")
    assert dump(cli.db) == before


def test_run_json_and_history(cli) -> None:
    code, out, _ = cli("import-bind", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["run_id"] == 1 and result["counts"]["added"] == 2 and not result["dry_run"]
    assert [a["domain"] for a in result["actions"]] == ["one.example", "two.example"]
    assert result["problems"] == [{"domain": "three.example", "message": "not imported: no usable route "
                                   "(no mrodxmailrelay= TXT record; no MX record)"}]
    code, out, _ = cli("import-bind")
    assert code == 0 and out.splitlines()[-1].startswith("run #2 (")
    code, out, _ = cli("import-bind", "--history")
    rows = out.splitlines()
    assert rows[0].split()[:4] == ["RUN", "STARTED", "STATUS", "BY"]
    assert [r.split()[0] for r in rows[1:]] == ["2", "1"] and "cli:" in rows[1]
    code, out, _ = cli("import-bind", "--history", "--json", "--limit", "1")
    [latest] = json.loads(out)
    assert (latest["id"], latest["status"], latest["unchanged"]) == (2, "ok", 2)
    code, out, _ = cli("domain", "list", "--json")
    assert {(d["name"], d["source"], d["route"]) for d in json.loads(out)} == {
        ("one.example", "bind", "dns-txt"), ("two.example", "bind", "dns-dom")}


def test_malformed_named_conf_is_one_line_error_naming_file_and_line(cli) -> None:
    conf = cli.named.conf
    conf.write_text(conf.read_text() + "zone \"x.example\" {\n  type primary\n  file \"x\";\n};\n")
    lines = conf.read_text().count("\n")
    before = [ln for ln in dump(cli.db) if "import_run" not in ln and "audit" not in ln]
    code, out, err = cli("import-bind")
    assert code == 1 and out == ""
    assert err == f"mrod: error: {conf}:{lines - 1}: missing ';' before 'file'\n"
    assert [ln for ln in dump(cli.db) if "import_run" not in ln and "audit" not in ln] == before
    code, out, _ = cli("import-bind", "--history", "--json")
    [failed] = json.loads(out)
    assert failed["status"] == "failed" and failed["error"] == err.removeprefix("mrod: error: ").strip()


def test_bad_bind_setting_is_a_config_error(start_named, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, start_named(ZONES), strategies='["dns-txt", "dns-nope"]')
    assert main(["--config", str(config), "import-bind"]) == 2
    assert capsys.readouterr().err == ("mrod: error: bind.strategies: unknown value 'dns-nope' "
                                       "(allowed: dns-txt, dns-dom, dns-sub)\n")


async def test_serve_runs_the_import_periodically_when_enabled(start_named, tmp_path: Path) -> None:
    named = start_named(ZONES)
    path = write_config(tmp_path, named, enabled="true", interval="3600")
    cfg = configmod.load(path)
    (tmp_path / "off").mkdir()
    disabled = configmod.load(write_config(tmp_path / "off", named))
    assert not any(isinstance(c, BindImportJob) for c in components(disabled, lookupd=False))
    [job] = [c for c in components(cfg, lookupd=False) if isinstance(c, BindImportJob)]
    async with db.opened(cfg.database, create=True):
        pass
    job.job.first_delay = 0.0
    await job.start()
    try:
        for _ in range(200):       # at most 20 s
            if job.job.runs or job.job.failures:
                break
            await asyncio.sleep(0.1)
    finally:
        await job.stop()
    assert (job.job.runs, job.job.failures) == (1, 0)
    assert job.last is not None and job.last.run_id == 1
    async with db.opened(cfg.database) as conn:
        assert {d.name for d in (await domains.search(conn, limit=None)).domains} == {"two.example"}
