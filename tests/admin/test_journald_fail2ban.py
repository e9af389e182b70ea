"""Logs fit journald (issue 12.5): under JOURNAL_STREAM no own timestamp and `<N>` priority
prefixes; failed panel sign-ins are one stable line that the shipped fail2ban filter matches —
checked with the real `fail2ban-regex` on the lines a real `mrod admin` wrote."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.admin.conftest import csrf_of
from tests.harness import accepts, free_port, require_tool

REPO = Path(__file__).resolve().parents[2]
FILTER = REPO / "contrib" / "fail2ban" / "filter.d" / "mrod.conf"
# A user name that tries to put another address into the line fail2ban reads.
NAMES = ["admin", "nobody", "x address=10.9.9.9 user="]


async def _fail_sign_ins(port: int) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        for name in NAMES:
            async with session.get(f"http://127.0.0.1:{port}/login") as response:
                page = await response.text()
            async with session.post(f"http://127.0.0.1:{port}/login", allow_redirects=False,
                                    data={"name": name, "password": "not the password",
                                          "csrf_token": csrf_of(page)}) as response:
                assert response.status == 401


def _run_panel(tmp_path: Path, tag: str, journal: bool) -> list[str]:
    port = free_port()
    config = tmp_path / f"{tag}.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "mrod.db"}"\n[lookupd]\nsocketmap = ""\npolicy = ""\n'
                      f'[admin]\nlisten = "127.0.0.1:{port}"\nbcrypt_rounds = 4\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_") and k != "JOURNAL_STREAM"}
    command = [sys.executable, "-m", "mrod", "--config", str(config)]
    if not (tmp_path / "mrod.db").exists():
        subprocess.run([*command, "init"], check=True, capture_output=True, env=env, timeout=60)
    log_path = tmp_path / f"{tag}.log"
    with open(log_path, "wb") as log:
        if journal:      # what systemd does: our stderr is the journal stream it names
            st = os.fstat(log.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        proc = subprocess.Popen([*command, "admin"], stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 20
        while not accepts(port):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        asyncio.run(_fail_sign_ins(port))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log_path.read_text()
    return log_path.read_text().splitlines()


def _banned(lines: list[str], tmp_path: Path, tag: str) -> list[str]:
    regex = require_tool("fail2ban-regex", "fail2ban")
    path = tmp_path / f"{tag}.f2b"
    path.write_text("".join(line + "\n" for line in lines))
    out = subprocess.run([regex, "-o", "ip", str(path), str(FILTER)], capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.split()


def test_journal_lines_and_fail2ban(tmp_path: Path) -> None:
    lines = _run_panel(tmp_path, "journal", journal=True)
    assert lines and all(re.match(r"<[2-7]>mrod", line) for line in lines), lines     # no timestamp
    assert any(line.startswith("<6>mrod: mrod admin starting: config ") for line in lines)
    failed = [line for line in lines if "sign-in failed" in line]
    assert failed == [f"<4>mrod.admin: panel sign-in failed: address=127.0.0.1 user={name!r}" for name in NAMES]
    # As `journalctl -u mrod` (and fail2ban's systemd backend) shows them: the journal adds
    # the time and the identifier, and has taken the <N> as the priority.
    shown = [f"Dec 02 10:00:0{i % 10} backupmx mrod[4242]: {line[3:]}" for i, line in enumerate(lines)]
    assert _banned(shown, tmp_path, "journal") == ["127.0.0.1"] * len(NAMES)


def test_plain_lines_and_fail2ban(tmp_path: Path) -> None:
    lines = _run_panel(tmp_path, "plain", journal=False)
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ mrod", line) for line in lines), lines
    assert sum("WARNING mrod.admin: panel sign-in failed: address=127.0.0.1" in line for line in lines) == len(NAMES)
    assert _banned(lines, tmp_path, "plain") == ["127.0.0.1"] * len(NAMES)
