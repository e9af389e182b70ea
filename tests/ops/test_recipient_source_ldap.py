"""An LDAP recipient source against a private slapd (one per module): plain ldap:// with a
bind DN and password file, StartTLS and ldaps:// verified against the test CA, AD-style
`smtp:` prefixes, a refused bind (the last list stays), and a certificate that does not verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from mrod.entities import domains, recipients
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.recipientsources import sources, spec, sync
from tests.data import ACTOR
from tests.harness.slapd import READER, READER_PASSWORD, SUFFIX, Slapd, person


@pytest.fixture(scope="module")
def slapd() -> Iterator[Slapd]:
    server = Slapd()
    try:
        server.start()
        server.add(person("alice", "Alice@Example.COM", "alias@example.com")
                   + person("bob", "bob@example.com", proxy=("SMTP:bob.b@example.com", "X500:/o=x/cn=bob"))
                   + person("carol", "carol@elsewhere.test"))
        yield server
    finally:
        server.stop()


@pytest.fixture
def secret(tmp_path: Path) -> str:
    path = tmp_path / "ldap-password"
    path.write_text(READER_PASSWORD + "\n")
    return str(path)


async def _source(conn: Connection, **fields: Any) -> None:
    await domains.add(conn, ACTOR, "example.com", host="mx.example.com")
    base = {"name": "dir", "kind": "ldap", "base": f"ou=people,{SUFFIX}", "filter": "(objectClass=inetOrgPerson)",
            "attributes": "mail,description", "bind_dn": READER}
    await sources.add(conn, ACTOR, spec.parse({**base, **fields}))
    await sources.use_for_domain(conn, ACTOR, "example.com", "dir")


EXPECTED = ["alias@example.com", "alice@example.com", "bob.b@example.com", "bob@example.com"]


@pytest.mark.parametrize("engine", ["sqlite"])
@pytest.mark.parametrize("tls", ["plain", "starttls", "ldaps"])
async def test_ldap_source_lists_the_directory(
        cfg: Config, conn: Connection, slapd: Slapd, secret: str, tls: str) -> None:
    fields: dict[str, Any] = {"url": slapd.ldaps_url if tls == "ldaps" else slapd.url, "password_file": secret}
    if tls != "plain":
        fields.update(ca_file=slapd.ca_file, starttls="on" if tls == "starttls" else "")
    await _source(conn, **fields)
    out = await sync.run(cfg, conn, "dir")
    assert out.applied, out.error
    assert [r.address for r in await recipients.list_for(conn, "example.com")] == EXPECTED
    assert out.ignored == 1 and out.invalid == 1          # carol@elsewhere.test; the X500: value


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_wrong_password_fails_and_keeps_nothing_secret(
        cfg: Config, conn: Connection, slapd: Slapd, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password-xyz\n")
    await _source(conn, url=slapd.url, password_file=str(wrong))
    out = await sync.run(cfg, conn, "dir")
    assert not out.applied and "bind as" in (out.error or "") and "invalidCredentials" in (out.error or "")
    assert "not-the-password-xyz" not in (out.error or "")
    assert (await domains.get(conn, "example.com")).recipients == "accept_all"


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_tls_without_the_ca_fails(cfg: Config, conn: Connection, slapd: Slapd, secret: str) -> None:
    await _source(conn, url=slapd.ldaps_url, password_file=secret)
    out = await sync.run(cfg, conn, "dir")
    assert not out.applied and out.error
    assert (await sources.get(conn, "dir")).failing_since is not None
