"""The `mrod` command: contract of DESIGN.md, exit codes, one-line errors that change nothing."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.answers import postfixlines
from mrod.infra import db
from tests.cli.conftest import dump

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.fresh_database
def test_init_is_idempotent(mrod, config_file: Path, engine: str) -> None:
    assert mrod("domain", "list").code == 1
    first = mrod("init")
    assert first.code == 0 and f"schema version {db.SCHEMA_VERSION}" in first.out
    assert (config_file.parent / "var" / "mrod.db").exists() == (engine == "sqlite")
    assert mrod("init").code == 0 and mrod("domain", "list").code == 0


@pytest.mark.fresh_database
def test_commands_before_init_say_so(mrod, config_file: Path, engine: str) -> None:
    r = mrod("domain", "list")
    if engine == "sqlite":
        assert r.code == 1 and r.err.strip() == (
            f"mrod: error: database {config_file.parent / 'var' / 'mrod.db'} does not "
            f"exist; run 'mrod init' first (config {config_file})")
    else:
        assert r.code == 1 and "has no mrod schema; run 'mrod init' first" in r.err
        assert r.err.strip().endswith(f"(config {config_file})")


def test_relay_commands(ready) -> None:
    r = ready("relay", "list", "--json")
    [relay] = json.loads(r.out)
    assert (relay["name"], relay["host"], relay["port"], relay["tls"], relay["domain_count"]) == \
        ("primary", "mx1.example.net", 25, "encrypt", 1)
    assert ready("relay", "set", "primary", "--port", "2525", "--protocol", "smtps").code == 0
    assert "2525" in ready("relay", "list").out
    assert ready("relay", "add", "second", "--host", "192.0.2.7").code == 0
    r = ready("relay", "rm", "primary")
    assert r.code == 1 and "used by 1 domain" in r.err
    assert ready("relay", "rm", "primary", "--reassign", "second").code == 0
    assert json.loads(ready("domain", "list", "--json").out)[0]["relay_name"] == "second"


@pytest.mark.parametrize(
    "args,message,code",
    [
        (["relay", "add", "x", "--host", "bad host"], "host: 'bad host' contains white space", 2),
        (["relay", "add", "x", "--host", "mx.example", "--port", "99999"], "port: 99999 is out of range (1 to 65535)", 2),
        (["relay", "add", "primary", "--host", "mx.example"], "relay 'primary' already exists", 1),
        (["relay", "set", "nosuch", "--port", "26"], "relay 'nosuch' does not exist", 1),
        (["domain", "add", "example.com", "--relay", "primary"], "domain 'example.com' already exists", 1),
        (["domain", "add", "new.example", "--relay", "nosuch"], "relay 'nosuch' does not exist", 1),
        (["domain", "add", "bad_domain.example", "--relay", "primary"], "may hold only letters", 2),
        (["domain", "add", "new.example"], "give a relay (--relay), a host (--host) or routing by MX (--mx)", 2),
        (["domain", "add", "new.example", "--host", "mx.example", "--port", "0"], "port: 0 is out of range", 2),
        (["domain", "set", "nosuch.example", "--disable"], "domain 'nosuch.example' does not exist", 1),
        (["domain", "set", "example.com", "--port", "26"], "give a host to override them", 2),
        (["domain", "rm", "example.com", "nosuch.example"], "domain 'nosuch.example' does not exist", 1),
        (["recipient", "add", "a@example.com", "broken@"], "broken@", 2),
        (["recipient", "add", "a@elsewhere.example"], "add the domain first", 1),
    ],
)
def test_refusals_are_one_line_and_change_nothing(ready, config_file: Path, args: list[str], message: str,
                                                  code: int) -> None:
    # 2: a value given is bad (as argparse's own usage errors); 1: refused in this state.
    before = dump(config_file)
    r = ready(*args)
    assert r.code == code
    assert r.err.count("\n") == 1 and r.err.startswith("mrod: error: ") and message in r.err, r.err
    assert dump(config_file) == before


def test_usage_errors_exit_2(ready, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        ready("domain", "add", "x.example", "--relay", "primary", "--host", "h")
    assert info.value.code == 2
    assert ready("domain", "set", "example.com").code == 2


def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys) -> None:
    from mrod.cli import main
    bad = tmp_path / "bad.toml"
    bad.write_text("[lookupd]\nidle_timeout = 'x'\n")
    assert main(["--config", str(bad), "domain", "list"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "mrod: error: lookupd.idle_timeout: expected a number, got 'x'"


def test_domain_lifecycle(ready) -> None:
    assert ready("domain", "add", "Host.Example", "--host", "10.0.0.5", "--port", "2525", "--protocol", "smtps",
                 "--tls", "secure", "--recipients", "listed", "--disabled").code == 0
    [d] = [x for x in json.loads(ready("domain", "list", "--json").out) if x["name"] == "host.example"]
    assert (d["host"], d["port"], d["protocol"], d["tls"], d["enabled"], d["recipients"]) == \
        ("10.0.0.5", 2525, "smtps", "secure", False, "listed")
    assert ready("domain", "set", "host.example", "--enable", "--relay", "primary", "--subdomains").code == 0
    show = json.loads(ready("domain", "show", "host.example", "--json", "--recipient", "joe").out)
    assert show["domain"]["relay_name"] == "primary"
    assert [p["answer"] for p in show["postfix"]] == [
        "OK host.example", "OK relay:[mx1.example.net]:25", "NOTFOUND ", "OK encrypt"]
    assert ready("recipient", "add", "Joe@host.example", "@sub.host.example").code == 0
    assert ready("recipient", "list", "host.example").out.split() == ["@sub.host.example", "joe@host.example"]
    assert ready("lookup", "relay_recipients", "joe+x@host.example").out.startswith("OK joe@host.example\n")
    assert ready("recipient", "rm", "joe@host.example").code == 0
    assert ready("domain", "rm", "host.example").code == 0
    assert "host.example" not in ready("domain", "list").out
    listing = ready("domain", "list", "--relay", "primary", "--enabled").out.splitlines()
    assert listing[0].split()[:2] == ["DOMAIN", "ROUTE"] and listing[1].startswith("example.com")


def test_lookup_prints_the_answer_and_why(ready) -> None:
    r = ready("lookup", "transport", "User+x@Sub.Example.COM")
    assert r.code == 0
    answer, why = r.out.splitlines()
    assert answer == "OK relay:[mx1.example.net]:25"
    assert why.startswith("# sub.example.com: subdomain of example.com")
    r = ready("lookup", "relay_domains", "example.org")
    assert r.code == 1 and r.out.startswith("NOTFOUND \n")
    assert ready("lookup", "transport", "*").code == 1


@pytest.mark.parametrize("engine", ["sqlite"])     # a damaged file; PostgreSQL's outage: tests/core/test_engine.py
def test_lookup_on_a_broken_database_is_temp(ready, config_file: Path) -> None:
    (config_file.parent / "var" / "mrod.db").write_bytes(b"not a database at all" * 100)
    r = ready("lookup", "relay_domains", "example.com")
    assert r.code == 75 and r.out.startswith("TEMP ")


def test_import_file(ready, tmp_path: Path, config_file: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("# backup list\nalpha.example\nBeta.Example primary\n\nbücher.example\n")
    r = ready("domain", "import", str(good), "--relay", "primary")
    assert r.code == 0 and r.out.startswith("3 domain(s) imported")
    assert ready("lookup", "relay_domains", "xn--bcher-kva.example").code == 0
    before = dump(config_file)
    bad = tmp_path / "bad.txt"
    bad.write_text("gamma.example\nbad_name.example\nalpha.example\ndelta.example nosuch\n")
    r = ready("domain", "import", str(bad), "--relay", "primary")
    assert r.code == 1
    lines = r.err.splitlines()
    assert lines[:3] == [
        f"{bad}:2: 'bad_name.example': label 'bad_name' may hold only letters, digits and inner hyphens",
        f"{bad}:3: alpha.example exists already",
        f"{bad}:4: delta.example: relay 'nosuch' does not exist",
    ]
    assert lines[-1] == "mrod: error: 3 line(s) refused; nothing was imported"
    assert dump(config_file) == before
    r = ready("domain", "import", str(tmp_path / "absent.txt"))
    assert r.code == 1 and "No such file" in r.err
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8" in ready("domain", "import", str(binary)).err


def test_import_from_stdin_in_one_transaction(mrod_proc) -> None:
    assert mrod_proc("init").code == 0
    assert mrod_proc("relay", "add", "primary", "--host", "mx1.example.net").code == 0
    lines = "".join(f"d{i}.example\n" for i in range(5000))
    r = mrod_proc("domain", "import", "-", "--relay", "primary", input=lines)
    assert r.code == 0 and r.out.startswith("5000 domain(s) imported")
    r = mrod_proc("domain", "import", "-", "--relay", "primary", "--skip-existing", input="d1.example\nnew.example\n")
    assert r.out.startswith("1 domain(s) imported, 1 skipped")


def test_postfix_config_matches_the_snippets(ready, config_file: Path) -> None:
    out = ready("postfix-config").out
    assert "relay_domains = socketmap:inet:127.0.0.1:0:relay_domains" in out
    assert "transport_maps = socketmap:inet:127.0.0.1:0:transport" in out
    assert "mrod-smtps unix - - n - - smtp" in out
    defaults = configmod.from_dict({})
    assert (REPO / "postfix-snippets" / "main.cf").read_text() == postfixlines.main_cf(defaults)
    assert (REPO / "postfix-snippets" / "master.cf").read_text() == postfixlines.master_cf(defaults)


def test_postfix_config_for_tcp_tables_and_unix_sockets() -> None:
    cfg = configmod.from_dict({"lookupd": {"socketmap": "", "tcp_table": {
        "relay_domains": "127.0.0.1:10111", "transport": "[::1]:10112"}}})
    text = postfixlines.main_cf(cfg)
    assert "relay_domains = tcp:127.0.0.1:10111" in text
    assert "transport_maps = tcp:[::1]:10112" in text
    assert "# relay_recipient_maps: no mrod endpoint serves relay_recipients" in text
    cfg = configmod.from_dict({"lookupd": {"socketmap": "unix:/var/spool/postfix/private/mrod"}})
    text = postfixlines.main_cf(cfg)
    assert "relay_domains = socketmap:unix:private/mrod:relay_domains" in text and "WARNING" not in text
    cfg = configmod.from_dict({"lookupd": {"socketmap": "unix:/run/mrod.sock"}})
    text = postfixlines.main_cf(cfg)
    assert "relay_domains = socketmap:unix:/run/mrod.sock:relay_domains" in text
    assert "# WARNING: /run/mrod.sock is outside /var/spool/postfix/" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("engine", ["sqlite"])     # lookupd reads SQLite until issue 11's next part
def test_lookupd_serves_and_stops_cleanly_on_sigterm(tmp_path: Path, mrod_proc, config_file: Path) -> None:
    port = _free_port()
    config_file.write_text(config_file.read_text().replace('socketmap = "127.0.0.1:0"', f'socketmap = "127.0.0.1:{port}"'))
    assert mrod_proc("init").code == 0
    proc = subprocess.Popen([sys.executable, "-m", "mrod", "--config", str(config_file), "lookupd"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        s.sendall(b"25:relay_domains example.com,")
        assert s.recv(100) == b"9:NOTFOUND ,"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "socketmap listening on 127.0.0.1" in err
        assert err.rstrip().endswith("mrod lookupd stopped") and "mrod lookupd stopping" in err
        assert f"mrod lookupd starting: config {config_file}, database {config_file.parent / 'var' / 'mrod.db'}" in err
        s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
