"""Logs fit journald (issue 12.5): under JOURNAL_STREAM no own timestamp and `<N>` priority
prefixes; failed panel sign-ins — a wrong password, and at the two-factor code step a wrong,
a replayed or a throttled code — are one stable line that the shipped fail2ban filter matches,
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
import pyotp

from tests.admin.conftest import csrf_of
from tests.harness import accepts, free_port, require_tool

REPO = Path(__file__).resolve().parents[2]
FILTER = REPO / "contrib" / "fail2ban" / "filter.d" / "mrod.conf"
# A user name that tries to put another address into the line fail2ban reads.
NAMES = ["admin", "nobody", "x address=10.9.9.9 user="]
CODER = "coder"              # signs in with two factors; someone guesses their codes
CODER_PASSWORD = "a long enough password"
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
# What the guessing below writes: two refused codes (wrong, replayed), a wrong password that
# reaches login_max_failures_user, then a code sent at the code step while the name is blocked.
CODE_STEP = [("failed", CODER)] * 3 + [("refused (throttled)", CODER)]


async def _fail_sign_ins(port: int) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        for name in NAMES:
            async with session.get(f"http://127.0.0.1:{port}/login") as response:
                page = await response.text()
            async with session.post(f"http://127.0.0.1:{port}/login", allow_redirects=False,
                                    data={"name": name, "password": "not the password",
                                          "csrf_token": csrf_of(page)}) as response:
                assert response.status == 401


async def _password(session: aiohttp.ClientSession, base: str, password: str = CODER_PASSWORD) -> int:
    async with session.get(f"{base}/login") as response:
        page = await response.text()
    async with session.post(f"{base}/login", allow_redirects=False,
                            data={"name": CODER, "password": password, "csrf_token": csrf_of(page)}) as response:
        return response.status


async def _code(session: aiohttp.ClientSession, base: str, code: str) -> int:
    async with session.get(f"{base}/login/code", allow_redirects=False) as response:
        page = await response.text()
    async with session.post(f"{base}/login/code", allow_redirects=False,
                            data={"code": code, "csrf_token": csrf_of(page)}) as response:
        return response.status


def _wrong(totp: pyotp.TOTP) -> str:
    """Six digits that are no code of this minute and the ones beside it."""
    good = {totp.at(time.time() + d) for d in range(-90, 91, 30)}
    return next(c for c in (f"{n:06d}" for n in range(0, 999999, 111111)) if c not in good)


async def _guess_codes(port: int) -> None:
    """Set up two-factor sign-in for CODER as a person would, then guess codes."""
    base = f"http://127.0.0.1:{port}"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as owner:
        async with owner.get(f"{base}/login") as response:
            page = await response.text()
        async with owner.post(f"{base}/login", data={"name": CODER, "password": CODER_PASSWORD,
                                                     "csrf_token": csrf_of(page)}) as response:
            assert response.status == 200
        async with owner.get(f"{base}/profile/two-factor") as response:
            page = await response.text()
        found = SECRET.search(page)
        assert found, page
        totp = pyotp.TOTP(found.group(1).replace(" ", ""))
        used = totp.now()
        async with owner.post(f"{base}/profile/two-factor/confirm",
                              data={"code": used, "csrf_token": csrf_of(page)}) as response:
            assert response.status == 200 and "shown only this once" in await response.text()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as guesser, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as second:
        assert await _password(guesser, base) == 303
        assert await _code(guesser, base, _wrong(totp)) == 401
        assert await _code(guesser, base, used) == 401                             # replayed
        assert await _password(second, base, "not the password") == 429           # the name is now blocked
        assert await _code(guesser, base, totp.now()) == 429       # even a good code, while blocked


def _run_panel(tmp_path: Path, tag: str, journal: bool) -> list[str]:
    port = free_port()
    config = tmp_path / f"{tag}.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "mrod.db"}"\n[lookupd]\nsocketmap = ""\npolicy = ""\n'
                      f'[admin]\nlisten = "127.0.0.1:{port}"\nbcrypt_rounds = 4\nlogin_max_failures_user = 3\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_") and k != "JOURNAL_STREAM"}
    command = [sys.executable, "-m", "mrod", "--config", str(config)]
    if not (tmp_path / "mrod.db").exists():
        subprocess.run([*command, "init"], check=True, capture_output=True, env=env, timeout=60)
        subprocess.run([*command, "user", "add", CODER, "--password-stdin"], input=CODER_PASSWORD.encode(),
                       check=True, capture_output=True, env=env, timeout=60)
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
        asyncio.run(_guess_codes(port))
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
    failed = [line for line in lines if "panel sign-in" in line]
    assert failed == [f"<4>mrod.admin: panel sign-in failed: address=127.0.0.1 user={name!r}" for name in NAMES] + [
        f"<4>mrod.admin: panel sign-in {what}: address=127.0.0.1 user={name!r}" for what, name in CODE_STEP]
    # As `journalctl -u mrod` (and fail2ban's systemd backend) shows them: the journal adds
    # the time and the identifier, and has taken the <N> as the priority.
    shown = [f"Dec 02 10:00:0{i % 10} backupmx mrod[4242]: {line[3:]}" for i, line in enumerate(lines)]
    assert _banned(shown, tmp_path, "journal") == ["127.0.0.1"] * (len(NAMES) + len(CODE_STEP))


def test_plain_lines_and_fail2ban(tmp_path: Path) -> None:
    lines = _run_panel(tmp_path, "plain", journal=False)
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ mrod", line) for line in lines), lines
    assert sum("WARNING mrod.admin: panel sign-in failed: address=127.0.0.1" in line for line in lines) == len(NAMES) + 3
    assert sum(f"WARNING mrod.admin: panel sign-in refused (throttled): address=127.0.0.1 user={CODER!r}" in line
               for line in lines) == 1
    assert _banned(lines, tmp_path, "plain") == ["127.0.0.1"] * (len(NAMES) + len(CODE_STEP))
