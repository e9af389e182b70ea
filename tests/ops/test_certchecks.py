"""Certificate findings (issue 22.3): Postfix's own certificate read through postconf from a
private Postfix config dir, and the relays' certificates as the health probe saw them on a real
TLS SMTP server (aiosmtpd) — all with real certificates made by openssl: one expiring in 5 days,
one for the wrong names, one signed by a test CA that the probe is told to trust."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from mrod.cli import main
from mrod.entities import domains, relays
from mrod.infra import certinfo, db
from mrod.infra.config import Config
from mrod.operations import certchecks, checks, health
from tests.conftest import make_config
from tests.data import ACTOR
from tests.harness import require_tool
from tests.harness.named import Named, zone_text

NOW = datetime.now(timezone.utc)
KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")     # fast to make, unlike RSA


class Certs:
    """A test CA and certificates made with the openssl command."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.openssl = require_tool("openssl", "openssl")
        self.ca, self.ca_key = self.dir / "ca.pem", self.dir / "ca.key"
        self._run("req", "-x509", *KEY, "-nodes", "-days", "30", "-subj", "/CN=mrod test CA",
                  "-keyout", str(self.ca_key), "-out", str(self.ca))

    def _run(self, *args: str) -> None:
        subprocess.run([self.openssl, *args], check=True, capture_output=True, timeout=60)

    def make(self, name: str, days: int, *dns: str, signed: bool = True) -> tuple[Path, Path]:
        """A certificate valid for ``days`` days listing ``dns`` (subjectAltName; CN the first)."""
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        san = ["-addext", "subjectAltName=" + ",".join(f"DNS:{d}" for d in dns)] if dns else []
        subject = f"/CN={dns[0] if dns else name}"
        if not signed:
            self._run("req", "-x509", *KEY, "-nodes", "-days", str(days), "-subj", subject, *san,
                      "-keyout", str(key), "-out", str(cert))
            return cert, key
        csr = self.dir / f"{name}.csr"
        self._run("req", "-new", *KEY, "-nodes", "-subj", subject, *san, "-keyout", str(key),
                  "-out", str(csr))
        self._run("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                  "-CAcreateserial", "-days", str(days), "-copy_extensions", "copy", "-out", str(cert))
        return cert, key

    def server_context(self, cert: Path, key: Path) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path)


# -- pure parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "host", "covered"), [
    ("mx.example.net", "MX.Example.NET.", True), ("*.example.net", "mx.example.net", True),
    ("*.example.net", "example.net", False), ("*.example.net", "a.mx.example.net", False),
    ("*.net", "example.net", False), ("mx.example.net", "mx2.example.net", False)])
def test_name_matching(pattern: str, host: str, covered: bool) -> None:
    assert certinfo.name_matches(pattern, host) is covered


async def test_a_real_certificate_is_read(certs: Certs) -> None:
    cert, _key = certs.make("mx", 5, "mx2.backup.test", "*.backup.example")
    info = await certinfo.of_file(str(cert))
    assert info.names == ("mx2.backup.test", "*.backup.example")
    # Measured from now, not from NOW: a loaded machine may reach this test minutes after import.
    assert timedelta(days=4) < info.not_after - datetime.now(timezone.utc) <= timedelta(days=5, minutes=5)
    plain, _key = certs.make("plain", 30, signed=False)         # no subjectAltName: the CN counts
    assert (await certinfo.of_file(str(plain))).names == ("plain",)
    with pytest.raises(certinfo.CertUnreadable, match="openssl cannot read it"):
        await certinfo.of_file(str(certs.ca_key))


# -- Postfix's own certificate ----------------------------------------------------------------------


def _postfix_dir(tmp_path: Path, cert: Path | None) -> Path:
    """A private Postfix config dir: just what postconf reads."""
    etc = tmp_path / "postfix"
    etc.mkdir(exist_ok=True)
    (etc / "main.cf").write_text(f"smtpd_tls_cert_file = {cert or ''}\n")
    (etc / "master.cf").write_text("")
    past = time.time() - 60      # Postfix waits for a file written within the last second ("hot")
    for name in ("main.cf", "master.cf"):
        os.utime(etc / name, (past, past))
    return etc


def _cfg(tmp_path: Path, etc: Path, **more: Any) -> Config:
    return make_config(tmp_path, postfix={"config_dir": str(etc)}, checks={"mx_names": ["mx2.backup.test"]}, **more)


async def test_postfix_own_certificate(tmp_path: Path, certs: Certs) -> None:
    require_tool("postconf", "postfix")
    good, _key = certs.make("good", 90, "mx2.backup.test")
    assert await certchecks.own_certificate(_cfg(tmp_path, _postfix_dir(tmp_path, good))) == []
    soon, _key = certs.make("soon", 5, "mx2.backup.test")
    [finding] = await certchecks.own_certificate(_cfg(tmp_path, _postfix_dir(tmp_path, soon)))
    assert (finding.level, finding.code) == ("warning", "own-cert-expires-soon")
    assert f"Postfix's certificate {soon} expires on" in finding.message and "in 4 days" in finding.message
    wrong, _key = certs.make("wrong", 90, "www.backup.test")
    [finding] = await certchecks.own_certificate(_cfg(tmp_path, _postfix_dir(tmp_path, wrong)))
    assert (finding.level, finding.code) == ("error", "own-cert-name")
    assert "covers www.backup.test, not this host's MX name mx2.backup.test" in finding.message
    assert "lists mx2.backup.test" in finding.fix
    [finding] = await certchecks.own_certificate(_cfg(tmp_path, _postfix_dir(tmp_path, None)))
    assert finding.code == "own-cert-missing"
    [finding] = await certchecks.own_certificate(_cfg(tmp_path, _postfix_dir(tmp_path, tmp_path / "gone.pem")))
    assert finding.code == "own-cert-unreadable"


def test_expired_certificates_are_errors() -> None:
    expired = certinfo.CertInfo(NOW - timedelta(days=1), ("mx2.backup.test",))
    [finding] = certchecks.own_findings("/etc/ssl/mx.pem", expired, "", ("mx2.backup.test",), NOW)
    assert (finding.level, finding.code) == ("error", "own-cert-expired")
    relay = {"name": "primary", "host": "mail.example.net", "tls": "encrypt", "cert_error": None,
             "cert_not_after": db.stamp(NOW - timedelta(days=1)), "cert_names": "mail.example.net"}
    [finding] = certchecks.relay_findings(relay, NOW)
    assert (finding.level, finding.code) == ("warning", "relay-cert-expired")     # encrypt: still delivered
    [finding] = certchecks.relay_findings({**relay, "tls": "secure"}, NOW)
    assert (finding.level, finding.code) == ("error", "relay-cert-expired")


# -- the relays' certificates, seen by the health probe ---------------------------------------------


async def _probe_and_judge(cfg: Config, conn: Any, port: int, tls: str, host: str = "localhost"
                           ) -> tuple[dict[str, Any], list[checks.Finding]]:
    relay = await relays.add(conn, ACTOR, name=f"primary-{tls}", host=host, port=port, tls=tls)
    await health.HealthMonitor(cfg).run_once()
    [row] = [r for r in await health.status(conn, node=cfg.node.name) if r["name"] == relay.name]
    certs = await certchecks.relay_certificates(conn, cfg.node.name)
    return row, certchecks.relay_findings(certs[relay.id], datetime.now(timezone.utc))


async def test_relay_certificates_seen_by_the_probe(cfg: Config, conn: Any, certs: Certs,
                                                    smtp_server: Callable[..., int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))       # the probe's verification trusts the test CA
    # verify, a certificate for the right name that expires in 5 days: up, and a warning.
    port = smtp_server(tls_context=certs.server_context(*certs.make("soon", 5, "localhost")))
    row, findings = await _probe_and_judge(cfg, conn, port, "verify")
    assert row["state"] == "up" and row["cert_names"] == "localhost" and row["cert_error"] is None
    assert [(f.level, f.code) for f in findings] == [("warning", "relay-cert-expires-soon")]
    assert "relay primary-verify's certificate (localhost) expires on" in findings[0].message
    # secure, a certificate for other names: the handshake fails, and the finding says why.
    port = smtp_server(tls_context=certs.server_context(*certs.make("wrong", 90, "mail.other.test")))
    row, findings = await _probe_and_judge(cfg, conn, port, "secure")
    assert row["last_ok"] is False and "Hostname mismatch" in row["cert_error"]
    [finding] = findings
    assert (finding.level, finding.code) == ("error", "relay-cert-verify")
    assert "fails verification (tls secure): Hostname mismatch" in finding.message
    # encrypt (not verified): a self-signed certificate for other names, implicit TLS — only expiry counts.
    wrong, key = certs.make("self", 5, "mail.other.test", signed=False)
    port = smtp_server(ssl_context=certs.server_context(wrong, key))
    await relays.add(conn, ACTOR, name="smtps-relay", host="localhost", port=port, protocol="smtps", tls="encrypt")
    await health.HealthMonitor(cfg).run_once()
    [row] = [r for r in await health.status(conn, node=cfg.node.name) if r["name"] == "smtps-relay"]
    assert row["state"] == "up" and row["cert_names"] == "mail.other.test"
    stored = await certchecks.relay_certificates(conn, cfg.node.name)
    assert [f.code for f in certchecks.relay_findings(stored[row["id"]], NOW)] == ["relay-cert-expires-soon"]


@pytest.mark.bind
def test_the_dns_checks_show_them(tmp_path: Path, certs: Certs, smtp_server: Callable[..., int],
                                        start_named: Callable[..., Named], monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("postconf", "postfix")
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    named = start_named({"good.test": zone_text("good.test", "@ IN MX 10 mail\n@ IN MX 20 mx2.backup.test.\n"
                                                             "mail IN A 127.0.0.2\n"),
                         "localhost": zone_text("localhost", "@ IN A 127.0.0.1\n")})
    own, _key = certs.make("own", 5, "www.backup.test")
    cfg = _cfg(tmp_path, _postfix_dir(tmp_path, own))
    cfg = make_config(tmp_path, postfix={"config_dir": cfg.postfix.config_dir},
                      checks={"mx_names": ["mx2.backup.test"], "resolver": "127.0.0.1", "resolver_port": named.port,
                              "timeout": 3.0})
    port = smtp_server(tls_context=certs.server_context(*certs.make("relay", 5, "localhost")))

    async def relay_probed() -> None:
        async with db.opened(cfg.database, create=True) as conn:
            await relays.add(conn, ACTOR, name="primary", host="localhost", port=port, tls="verify")
            await domains.add(conn, ACTOR, "good.test", relay="primary")
        await health.HealthMonitor(cfg).run_once()

    asyncio.run(relay_probed())
    config_file = tmp_path / "mrod.toml"
    config_file.write_text(f'[database]\npath = "{cfg.database.path}"\n[node]\nname = "{cfg.node.name}"\n'
                           f'[postfix]\nconfig_dir = "{cfg.postfix.config_dir}"\n[checks]\n'
                           f'mx_names = ["mx2.backup.test"]\nresolver = "127.0.0.1"\nresolver_port = {named.port}\n')
    capsys.readouterr()
    assert main(["--config", str(config_file), "check"]) == 1           # the own certificate's name: an error
    out = capsys.readouterr().out
    assert "this host: error: Postfix's certificate" in out and "this host: warning: Postfix's certificate" in out
    assert "good.test: warning\n  warning: relay primary's certificate (localhost) expires on" in out

    async def stored() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with db.opened(cfg.database) as conn:
            return await checks.results(conn), await certchecks.host_results(conn)

    [domain], [host] = asyncio.run(stored())
    assert [f["code"] for f in domain["findings"]] == ["relay-cert-expires-soon"]
    assert host["status"] == "error"
    assert {f["code"] for f in host["findings"]} == {"own-cert-expires-soon", "own-cert-name"}
