"""Zone names with master-file escapes (\\DDD, \\X): real named serves the decoded name, and
the importer imports exactly that — through named-checkconf and through mrod's own parser;
a decoded name no mail domain can be is skipped with a warning at its line."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from mrod import bindimport
from mrod.bindimport import checkconf, namedconf, zonenames
from mrod.entities import domains
from mrod.entities.audit import Actor
from mrod.infra import db
from tests.conftest import make_config
from tests.harness import require_tool
from tests.harness.named import zone_text

pytestmark = pytest.mark.bind

ESCAPED = "esc\\097ped.example"             # \097 is 'a': BIND serves escaped.example
LETTERS = "\\e\\x\\a\\m\\p\\l\\e-letters.org"  # \X is X: example-letters.org
DOTTED = "dot\\046inside.example"            # \046 is '.', inside the first label
ZONES = {
    ESCAPED: zone_text(ESCAPED, "@ MX 10 mx\nmx A 192.0.2.1\n"),
    LETTERS: zone_text(LETTERS, "@ MX 10 mx\nmx A 192.0.2.1\n"),
    DOTTED: zone_text(DOTTED, "@ MX 10 mx\nmx A 192.0.2.1\n"),
}


def soa_rcode(named, name: dns.name.Name | str) -> int:
    reply = named.answers(name.to_text() if isinstance(name, dns.name.Name) else name)
    assert reply is not None, "named did not answer"
    return reply.rcode() if reply.answer else -1


@pytest.mark.parametrize("mode", ["always", "never"])
async def test_escaped_zone_names_are_imported_as_named_serves_them(start_named, tmp_path: Path, mode: str) -> None:
    if mode == "always":
        require_tool("named-checkconf", "bind9-utils")
    # The dotted zone's host names (ns1.dot\.inside.example) fail BIND's default check-names
    # for a primary; a secondary does not check them. Serve it anyway to show what BIND serves.
    named = start_named(ZONES, options="check-names primary ignore;")
    # What BIND serves: the decoded names, not the digits.
    assert soa_rcode(named, "escaped.example") == dns.rcode.NOERROR
    assert soa_rcode(named, "example-letters.org") == dns.rcode.NOERROR
    assert soa_rcode(named, "esc097ped.example") != dns.rcode.NOERROR
    dotted = dns.name.Name([b"dot.inside", b"example", b""])
    assert soa_rcode(named, dotted) == dns.rcode.NOERROR
    assert soa_rcode(named, "dot046inside.example") != dns.rcode.NOERROR

    cfg = make_config(tmp_path, bind={
        "named_conf": str(named.conf), "checkconf": mode, "resolver": "127.0.0.1",
        "resolver_port": named.port, "strategies": ["dns-dom"], "dns_timeout": 2.0})
    async with db.opened(cfg.database.path, create=True) as conn:
        result = await bindimport.run(conn, cfg, Actor(name="tester", origin="cli", remote="local"))
        assert sorted(a.name for a in result.plan.actions) == ["escaped.example", "example-letters.org"]
        assert (await domains.get(conn, "escaped.example")).route == "dns-dom"
    line = named.conf.read_text().splitlines().index(
        f'zone "{DOTTED}" {{ type primary; file "{DOTTED}.db"; }};') + 1
    assert result.discovery.warnings == [
        f'{named.conf}:{line}: zone "{DOTTED}" skipped: BIND reads it as dot\\.inside.example: '
        "a label holds a dot (\\046), which no mail domain can"]


def test_decoding_follows_dnspython_and_bind() -> None:
    assert zonenames.decode("EX\\065MPLE.org.").labels == (b"EXAMPLE", b"org")
    assert zonenames.mail_domain(zonenames.decode("EX\\065MPLE.org.")) == "example.org"
    assert zonenames.decode("a\\.b.example").labels == (b"a.b", b"example")
    assert zonenames.decode(".").labels == ()
    with pytest.raises(zonenames.BadZoneName):
        zonenames.decode("bad\\999.example")
    # Raw UTF-8 is taken as bytes, as BIND takes it: not the xn-- name a mail domain's zone has.
    with pytest.raises(Exception, match="non-ASCII bytes"):
        zonenames.mail_domain(zonenames.decode("bücher.example"))


def test_quoted_strings_keep_backslashes_as_bind_does() -> None:
    # BIND's lexer removes the backslash of \" only; \\ and \DDD reach the name parser.
    [st] = namedconf.parse_text('zone "a\\\\b\\"c\\046d" { type primary; };')
    assert st.words[1].text == 'a\\\\b"c\\046d'


def test_an_invalid_escape_is_refused_like_named_checkconf(tmp_path: Path) -> None:
    conf = tmp_path / "named.conf"
    conf.write_text('zone "good.example" { type primary; file "a"; };\n'
                    'zone "bad\\999.example" { type primary; file "b"; };\n')
    with pytest.raises(namedconf.ConfError) as own:
        namedconf.declarations(namedconf.parse_file(conf))
    assert (own.value.file, own.value.line) == (str(conf), 2)
    require_tool("named-checkconf", "bind9-utils")
    with pytest.raises(namedconf.ConfError) as bind:
        checkconf.canonical(conf)
    assert (bind.value.line, bind.value.message) == (2, own.value.message) == (2, "zone 'bad\\999.example': is not a valid name")
