"""First-day CLI polish (issue 12.6): help everywhere, one-line errors in words, exit 2 for bad
values, helpful empty and refused results."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mrod.cli import build_parser, helptext, logsetup
from mrod.infra import oserrors
from mrod.infra.smtp import Dialogue
from mrod.operations import health, relaytest
from tests.harness import free_port, require_root

REPO = Path(__file__).resolve().parents[2]


def _walk(parser: argparse.ArgumentParser, path: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            for name, child in action.choices.items():
                yield f"{path} {name}".strip(), None, helps.get(name)
                yield from _walk(child, f"{path} {name}".strip())
        elif not isinstance(action, argparse._HelpAction):
            yield path, action.option_strings or action.dest, action.help


def test_every_command_and_option_has_help() -> None:
    missing = [(path, what) for path, what, text in _walk(build_parser()) if not text]
    assert missing == []


def test_no_two_options_of_a_command_say_the_same() -> None:
    """`mrod domain set --help` once gave --enable and --disable one text (their shared dest's)."""
    seen: dict[tuple[str, str], object] = {}
    same = []
    for path, what, text in _walk(build_parser()):
        if what is None or text is None:
            continue
        if (path, text) in seen:
            same.append((path, seen[(path, text)], what, text))
        seen[(path, text)] = what
    assert same == []


@pytest.mark.parametrize("command", ["relay add", "domain add", "recipient add", "user add", "lookup", "init"])
def test_common_commands_show_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*command.split(), "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:\n" in out and helptext.EXAMPLES[command].splitlines()[0] in out


def test_bad_values_exit_2_whoever_checks_them(ready) -> None:
    assert ready("relay", "add", "x", "--host", "mx.example", "--port", "99999").code == 2   # mrod's check
    with pytest.raises(SystemExit) as info:                                                 # argparse's
        ready("relay", "add", "x", "--host", "mx.example", "--tls", "encrpyt")
    assert info.value.code == 2


def test_empty_recipient_list_says_so(ready) -> None:
    r = ready("recipient", "list", "example.com")
    assert r.code == 0 and r.out == ("no recipients listed for example.com: it accepts every address "
                                     "(recipient policy accept_all)\n")
    assert ready("domain", "add", "example.org", "--relay", "primary", "--recipients", "listed").code == 0
    r = ready("recipient", "list", "example.org")
    assert r.code == 0 and "no recipients listed for example.org: it accepts no address" in r.out
    assert ready("recipient", "list", "example.org", "--json").out == "[]\n"


def test_relay_rm_refusal_names_reassign(ready) -> None:
    r = ready("relay", "rm", "primary")
    assert r.code == 1 and r.err.count("\n") == 1
    assert "used by 1 domain(s)" in r.err and "mrod relay rm primary --reassign OTHER_RELAY" in r.err


@pytest.mark.parametrize("command,setting", [("lookupd", "lookupd.socketmap"), ("admin", "admin.listen")])
def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path, command: str, setting: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "mrod.toml"
        lookupd, admin = (port, free_port()) if command == "lookupd" else (free_port(), port)
        config.write_text(f'[database]\npath = "m.db"\n[lookupd]\nsocketmap = "127.0.0.1:{lookupd}"\npolicy = ""\n'
                          f'[admin]\nlisten = "127.0.0.1:{admin}"\nbcrypt_rounds = 4\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
        mrod = [sys.executable, "-m", "mrod", "--config", str(config)]
        subprocess.run([*mrod, "init"], check=True, capture_output=True, env=env, timeout=60)
        r = subprocess.run([*mrod, command], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("mrod: error:")]
    assert errors == [f"mrod: error: {setting}: cannot listen on 127.0.0.1:{port}: already in use "
                      "(another program, or another mrod, listens there)"]
    assert "Traceback" not in r.stderr and "Errno" not in r.stderr


def test_probe_failures_are_words(tmp_path: Path) -> None:
    port = free_port()      # nothing listens there
    probe = asyncio.run(health.probe("127.0.0.1", port, timeout=5))
    assert not probe.ok and probe.detail == f"connection refused: nothing listens on 127.0.0.1 port {port}"
    result = asyncio.run(relaytest.probe("127.0.0.1", port, timeout=5))
    assert "connection refused" in " ".join(result.steps) and "Errno" not in " ".join(result.steps)
    # asyncio's OSError for several addresses at once carries no errno: still words.
    dialogue = Dialogue("localhost", port)
    why = dialogue.why(OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 25), "
                               "[Errno 113] Connect call failed ('127.0.0.1', 25)"))
    assert why == f"localhost port {port}: connection refused (nothing listens on that port)"


def test_asyncio_multiple_errors_are_words() -> None:
    exc = OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 25), "
                  "[Errno 111] Connect call failed ('127.0.0.1', 25)")
    assert oserrors.describe(exc) == "connection refused (nothing listens on that port)"
    assert oserrors.describe(OSError(113, "No route to host"), "mx port 25") == "mx port 25: host unreachable"


def test_journal_formatter_prefixes_every_line() -> None:
    formatter = logsetup.JournalFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("mrod.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    lines = formatter.format(record).splitlines()
    assert lines[0] == "<3>mrod.x: failed here" and len(lines) > 2 and all(ln.startswith("<3>") for ln in lines)
    assert [logsetup.priority(n) for n in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]


@pytest.mark.parametrize("engine", ["sqlite"])    # a database file's owner: SQLite's
def test_root_on_the_services_database_is_told_to_run_as_its_owner(ready, config_file: Path) -> None:
    database = config_file.parent / "var" / "mrod.db"
    assert "warning" not in ready("domain", "list").err          # root's own database: quiet
    require_root("giving the database to another user")
    os.chown(database, 65534, 65534)                              # nobody, as a service user would
    r = ready("domain", "list")
    assert r.code == 0 and "example.com" in r.out
    assert r.err.strip().startswith(f"mrod: warning: {database} belongs to nobody; run as that user "
                                    "(runuser -u nobody -- mrod …)")


@pytest.mark.parametrize("engine", ["postgresql"])
def test_root_on_a_postgresql_node_is_not_warned_about_a_local_file(ready, config_file: Path) -> None:
    """On PostgreSQL the file at [database] path is not the store (a package's first SQLite
    database may still lie there, owned by the service): nothing to warn about."""
    require_root("giving the file to another user")
    database = config_file.parent / "var" / "mrod.db"
    database.parent.mkdir(exist_ok=True)
    database.write_bytes(b"")
    os.chown(database, 65534, 65534)
    r = ready("domain", "list")
    assert r.code == 0 and "example.com" in r.out and "warning" not in r.err
