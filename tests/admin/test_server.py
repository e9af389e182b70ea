"""The panel as a running component: ``mrod serve`` starts it beside lookupd (and prints the
first admin's password once); served over HTTPS with [admin] tls_cert/tls_key the session
cookie is Secure; a config with only one of the two is refused at start."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from mrod.admin.server import AdminServer
from mrod.infra.errors import ConfigError
from tests.data import SYSTEM
from tests.admin.conftest import csrf_of
from tests.conftest import make_config
from tests.harness import free_port, require_tool


def _wait_for(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


def test_mrod_serve_runs_the_panel_beside_lookupd(tmp_path: Path) -> None:
    panel, socketmap = free_port(), free_port()
    config = tmp_path / "mrod.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "mrod.db"}"\n'
                      f'[lookupd]\nsocketmap = "127.0.0.1:{socketmap}"\npolicy = ""\n'
                      f'[admin]\nlisten = "127.0.0.1:{panel}"\nbcrypt_rounds = 4\n'
                      '[health]\nenabled = false\n[queue]\nenabled = false\n[checks]\nenabled = false\n')
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    refused = subprocess.run([sys.executable, "-m", "mrod", "--config", str(config), "serve"],
                             capture_output=True, text=True, env=env, timeout=30)
    # Only `mrod init` creates a database; serve says which config it read.
    assert refused.returncode == 1 and f"run 'mrod init' first (config {config})" in refused.stderr
    assert not (tmp_path / "mrod.db").exists()
    init = subprocess.run([sys.executable, "-m", "mrod", "--config", str(config), "init"],
                          capture_output=True, text=True, env=env, timeout=30, check=True)
    assert len(re.findall(r"'admin' with the password: \S+", init.stdout)) == 1
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mrod", "--config", str(config), "serve"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for(panel, proc, log_path)
        _wait_for(socketmap, proc, log_path)
        with socket.create_connection(("127.0.0.1", panel), timeout=5) as s:
            s.sendall(b"GET /login HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            reply = s.makefile("rb").read().decode()
        assert reply.split()[1] == "200" and "Sign in to mrod" in reply
        with socket.create_connection(("127.0.0.1", socketmap), timeout=5) as s:
            s.sendall(b"25:relay_domains example.com,")
            assert s.recv(100) == b"9:NOTFOUND ,"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    text = log_path.read_text()
    assert code == 0, text
    assert "'admin' with the password" not in text          # init made it
    assert f"mrod serve starting: config {config}, database {tmp_path / 'mrod.db'}" in text


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl", "openssl")
    cert, key = tmp_path / "panel.crt", tmp_path / "panel.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_https_panel_sets_secure_cookies(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    port = free_port()
    cfg = make_config(tmp_path, admin={"listen": f"127.0.0.1:{port}", "bcrypt_rounds": 4,
                                       "tls_cert": str(certificate[0]), "tls_key": str(certificate[1])})
    from mrod.infra import db
    async with db.opened(cfg.database.path, create=True):   # what `mrod init` does
        pass
    server = AdminServer(cfg)
    await server.start()
    try:
        from mrod.entities import users

        async with db.opened(cfg.database.path) as conn:
            await users.add(conn, SYSTEM, "alice", "alice password", perms=["domains"], rounds=4)
        context = ssl.create_default_context(cafile=str(certificate[0]))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # an IP host
            async with session.get(f"https://127.0.0.1:{port}/login", ssl=context) as response:
                page = await response.text()
                assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            async with session.post(f"https://127.0.0.1:{port}/login", ssl=context, allow_redirects=False,
                                    data={"name": "alice", "password": "alice password",
                                          "csrf_token": csrf_of(page)}) as response:
                assert response.status == 303
                cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith("mrod_session="))
                assert "Secure" in cookie and "HttpOnly" in cookie
    finally:
        await server.stop()


async def test_half_a_tls_config_is_refused(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    # Refused when the config is loaded, before the panel (or anything) starts.
    with pytest.raises(ConfigError, match="give both"):
        make_config(tmp_path, admin={"bcrypt_rounds": 4, "tls_cert": str(certificate[0])})
    with pytest.raises(ConfigError, match="tls_cert"):
        make_config(tmp_path, admin={"bcrypt_rounds": 4, "tls_cert": str(tmp_path / "no.crt"),
                                     "tls_key": str(tmp_path / "no.key")})
    # Files that exist but are no certificate and key: refused at start, before the first admin.
    cfg = make_config(tmp_path, admin={"bcrypt_rounds": 4, "tls_cert": str(certificate[1]),
                                       "tls_key": str(certificate[1])})
    from mrod.infra import db
    async with db.opened(cfg.database.path, create=True):
        pass
    with pytest.raises(ConfigError, match="tls_cert"):
        await AdminServer(cfg).start()
    async with db.opened(cfg.database.path) as conn:
        async with conn.execute("SELECT count(*) FROM \"user\"") as cur:
            assert tuple(await cur.fetchone() or ()) == (0,)


@pytest.mark.parametrize(("listen", "tls", "warned"), [
    ("0.0.0.0:8380", False, True), ("[::]:8380", False, True), ("192.0.2.10:8380", False, True),
    ("0.0.0.0:8380", True, False), ("127.0.0.1:8380", False, False),
    ("127.0.0.53:8380", False, False), ("[::1]:8380", False, False), ("localhost:8380", False, False),
    ("unix:/run/mrod/panel.sock", False, False),
])
def test_plaintext_beyond_loopback_is_what_the_start_warns_about(listen: str, tls: bool, warned: bool) -> None:
    from mrod.admin.server import plaintext_beyond_loopback
    from mrod.infra import endpoints

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) if tls else None
    assert plaintext_beyond_loopback(endpoints.parse(listen), context) is warned


async def test_start_on_loopback_does_not_warn_and_the_warning_names_the_fix(tmp_path: Path, caplog) -> None:
    from mrod.admin.server import PLAINTEXT_WARNING

    cfg = make_config(tmp_path, admin={"listen": f"127.0.0.1:{free_port()}", "bcrypt_rounds": 4})
    from mrod.infra import db
    async with db.opened(cfg.database, create=True):      # as `mrod init` would
        pass
    server = AdminServer(cfg)
    with caplog.at_level("WARNING", logger="mrod.admin"):
        await server.start()
        await server.stop()
    assert not [r for r in caplog.records if "without TLS" in r.getMessage()]
    assert "tls_cert" in PLAINTEXT_WARNING and "127.0.0.1" in PLAINTEXT_WARNING
