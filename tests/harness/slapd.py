"""A private OpenLDAP (Debian's slapd) for the tests: a slapd.conf in a temp dir, an mdb
database there, ldap:// (with StartTLS) and ldaps:// on free loopback ports, a self-signed
certificate for 127.0.0.1 made by openssl. Stopped by its PID. See /work/shared/LDAP.md."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness import free_port, require_root, require_tool

SUFFIX = "dc=test,dc=example"
ADMIN = f"cn=admin,{SUFFIX}"
READER = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret"
_ADMIN_PASSWORD = "admin-secret"

_CONF = """include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCertificateFile {dir}/cert.pem
TLSCertificateKeyFile {dir}/key.pem
database mdb
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {dir}/data
maxsize 33554432
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""

_BASE = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: test
dc: test

dn: {READER}
objectClass: person
objectClass: simpleSecurityObject
cn: reader
sn: reader
userPassword: {READER_PASSWORD}

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people
"""


class Slapd:
    def __init__(self) -> None:
        self.slapd = require_tool("slapd", "slapd")
        self.ldapadd = require_tool("ldapadd", "ldap-utils")
        self.openssl = require_tool("openssl", "openssl")
        require_root("a private slapd")
        self.dir = Path(tempfile.mkdtemp(prefix="mrod-slapd-"))
        self.port, self.tls_port = free_port(), free_port()
        self.ca_file = str(self.dir / "cert.pem")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self) -> "Slapd":
        subprocess.run([self.openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.dir / "key.pem"), "-out", self.ca_file], check=True, capture_output=True)
        (self.dir / "data").mkdir()
        conf = self.dir / "slapd.conf"
        conf.write_text(_CONF.format(dir=self.dir, suffix=SUFFIX, admin=ADMIN, password=_ADMIN_PASSWORD))
        with open(self.dir / "slapd.log", "wb") as log:   # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [self.slapd, "-h", f"{self.url}/ {self.ldaps_url}/", "-f", str(conf), "-d", "0"],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 20
        while not _listening(self.port) or not _listening(self.tls_port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"slapd did not start: {(self.dir / 'slapd.log').read_text()[-2000:]}")
            time.sleep(0.05)
        self.add(_BASE)
        return self

    def add(self, ldif: str) -> None:
        path = self.dir / "add.ldif"
        path.write_text(ldif)
        subprocess.run([self.ldapadd, "-x", "-H", self.url, "-D", ADMIN, "-w", _ADMIN_PASSWORD, "-f", str(path)],
                       check=True, capture_output=True, timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def person(uid: str, *mails: str, proxy: tuple[str, ...] = ()) -> str:
    """An LDIF entry under ou=people with mail values (and AD-style proxyAddresses in
    `description`, the attribute the tests point at: OpenLDAP has no proxyAddresses)."""
    lines = [f"dn: uid={uid},ou=people,{SUFFIX}", "objectClass: inetOrgPerson", f"uid: {uid}", f"cn: {uid}",
             f"sn: {uid}", *(f"mail: {m}" for m in mails), *(f"description: {p}" for p in proxy)]
    return "\n".join(lines) + "\n\n"
