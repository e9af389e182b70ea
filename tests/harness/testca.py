"""A test certificate authority made by openssl: a CA and leaf certificates with the given
names (SANs) and lifetime, for servers a test starts (an HTTPS policy host, an SMTP primary)
and clients told to trust the CA (``ca_file``).

    ca = TestCA(tmp_path / "ca")                       # CA key + self-signed certificate
    leaf = ca.issue("mx1", ["mx1.example.test"], days=30)
    leaf.cert, leaf.key                                # PEM files
    ca.server_context(leaf)                            # an ssl.SSLContext serving it
    leaf.spki_sha256()                                 # the data of its `TLSA 3 1 1` record
    ca.cert                                            # the PEM file clients trust

``days`` may be 0 or negative for an expired certificate (its notAfter lies in the past).
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.harness import require_tool


@dataclass(frozen=True)
class Leaf:
    cert: Path
    key: Path
    names: tuple[str, ...]

    def spki_sha256(self) -> str:
        """The SHA-256 of the certificate's public key (DER SubjectPublicKeyInfo), hex: the data
        of a ``TLSA 3 1 1`` record (DANE-EE, SPKI, SHA-256)."""
        pem = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-noout", "-pubkey"], check=True,
                             capture_output=True, timeout=30).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem, check=True,
                             capture_output=True, timeout=30).stdout
        return hashlib.sha256(der).hexdigest()


class TestCA:
    __test__ = False        # not a pytest test class

    def __init__(self, directory: Path, name: str = "mrod test CA") -> None:
        self.openssl = require_tool("openssl", "openssl")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", str(self.key), "-out", str(self.cert), "-days", "30", "-subj", f"/CN={name}",
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _run(self, *args: str) -> None:
        subprocess.run([self.openssl, *args], check=True, capture_output=True, timeout=60)

    def issue(self, stem: str, names: list[str], days: int = 30) -> Leaf:
        """A leaf certificate for ``names`` (the first is the CN), valid ``days`` from now."""
        key, csr, cert = self.dir / f"{stem}.key", self.dir / f"{stem}.csr", self.dir / f"{stem}.pem"
        ext = self.dir / f"{stem}.ext"
        sans = ",".join(f"DNS:{n}" for n in names)
        ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        self._run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}")
        now = datetime.now(timezone.utc)
        end = now + timedelta(days=days) if days > 0 else now + timedelta(days=days, minutes=-1)
        start = min(now, end) - timedelta(days=1)
        # `openssl ca` (OpenSSL 3.0's x509 has no -not_before/-not_after): any dates, also past ones.
        self._run("ca", "-batch", "-config", str(self._ca_conf()), "-in", str(csr), "-out", str(cert),
                  "-cert", str(self.cert), "-keyfile", str(self.key), "-extfile", str(ext), "-notext",
                  "-startdate", start.strftime("%Y%m%d%H%M%SZ"), "-enddate", end.strftime("%Y%m%d%H%M%SZ"))
        return Leaf(cert, key, tuple(names))

    def _ca_conf(self) -> Path:
        conf = self.dir / "ca.cnf"
        if not conf.exists():
            (self.dir / "new").mkdir(exist_ok=True)
            (self.dir / "index.txt").write_text("")
            (self.dir / "serial").write_text("1000\n")
            conf.write_text(
                f"[ca]\ndefault_ca = test\n[test]\ndatabase = {self.dir}/index.txt\n"
                f"new_certs_dir = {self.dir}/new\nserial = {self.dir}/serial\ndefault_md = sha256\n"
                "policy = anything\nunique_subject = no\n[anything]\ncommonName = supplied\n")
        return conf

    def server_context(self, leaf: Leaf) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(leaf.cert), str(leaf.key))
        return context
