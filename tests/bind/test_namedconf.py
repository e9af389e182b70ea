"""named.conf: mrod's own parser, named-checkconf (-p and -l), and their agreement on a corpus
of tricky files; malformed files give FILE:LINE errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.bindimport import checkconf, namedconf, sources
from tests.harness import require_tool

CORPUS = Path(__file__).parent / "corpus"
BAD = Path(__file__).parent / "corpus-bad"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "named.conf").is_file())


def zones_of(decls: namedconf.Declarations) -> set[tuple]:
    return {(z.name.rstrip(".").lower() or ".", z.zone_class, z.view, z.type, z.in_view) for z in decls.zones}


def bind_config(conf: Path, **values) -> configmod.BindConfig:
    return configmod.from_dict({"bind": {"named_conf": str(conf), **values}}).bind


def test_corpus_is_not_empty() -> None:
    assert {"comments", "debian", "includes", "quoting", "statements", "types", "views"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_own_parser_finds_the_expected_domains(case: str) -> None:
    conf = CORPUS / case / "named.conf"
    expected = (CORPUS / case / "expected.txt").read_text().split()
    found = sources.discover(bind_config(conf, checkconf="never"), conf.parent)
    assert sorted(found.zones) == expected
    assert all(z.source == "bind" for z in found.zones.values())


@pytest.mark.parametrize("case", CASES)
def test_named_checkconf_and_own_parser_agree(case: str) -> None:
    require_tool("named-checkconf", "bind9-utils")
    conf = CORPUS / case / "named.conf"
    own = namedconf.declarations(namedconf.parse_file(conf))
    canonical = namedconf.declarations(namedconf.parse_text(checkconf.canonical(conf)))
    listed = {(z.name.rstrip(".").lower() or ".", z.zone_class, z.view,
               None if z.type == "in-view" else z.type, z.in_view) for z in checkconf.listing(conf)}
    assert zones_of(own) == zones_of(canonical) == listed
    assert own.catalogs == canonical.catalogs and own.policies == canonical.policies
    through_bind = sources.discover(bind_config(conf, checkconf="always"), conf.parent)
    through_mrod = sources.discover(bind_config(conf, checkconf="never"), conf.parent)
    assert through_bind.zones.keys() == through_mrod.zones.keys()
    assert sorted(through_bind.skipped) == sorted(through_mrod.skipped)
    # Both name the file and line that declare each zone (issue 14.2).
    assert through_bind.warnings == through_mrod.warnings
    assert {n: z.where for n, z in through_bind.zones.items()} == {n: z.where for n, z in through_mrod.zones.items()}
    assert through_bind.readers[0].endswith("(named-checkconf -p)")
    assert through_mrod.readers[0].endswith("(mrod's named.conf parser)")


def test_views_in_view_and_classes() -> None:
    decls = namedconf.declarations(namedconf.parse_file(CORPUS / "views" / "named.conf"))
    zones = zones_of(decls)
    assert ("shared.example", "IN", "external", None, "internal") in zones
    assert ("both-views.example", "IN", "external", "slave", None) in zones
    assert ("bind", "CH", "chaos", "master", None) in zones
    found = sources.discover(bind_config(CORPUS / "views" / "named.conf"), CORPUS)
    skipped = dict(found.skipped)
    assert skipped["bind"] == "class CH"
    assert skipped["forwarded.example"] == "type forward"
    assert skipped["static.example"] == "type static-stub"
    assert skipped["10.in-addr.arpa"] == skipped["8.b.d.0.1.0.0.2.ip6.arpa"] == "in [bind] skip_zones"
    assert "shared.example" in found.zones     # counted once, from its own view
    assert found.zones["both-views.example"].where.endswith("(view internal)")


def test_types_are_configurable_and_invalid_names_warn() -> None:
    conf = CORPUS / "types" / "named.conf"
    only_secondaries = sources.discover(bind_config(conf, zone_types=["slave"], checkconf="never"), conf.parent)
    assert sorted(only_secondaries.zones) == ["secondary.example", "slave.example"]
    found = sources.discover(bind_config(conf, checkconf="never"), conf.parent)
    skipped = dict(found.skipped)
    assert skipped["catalog.example"] == "a catalog zone"
    assert skipped["localhost"] == "in [bind] skip_zones"
    assert skipped["."] == "type hint"
    assert skipped["mirror.example"] == "type mirror"
    assert [w.split(": zone ")[1] for w in found.warnings] == [
        "'under_score.example' skipped: 'under_score.example': label 'under_score' may hold only letters,"
        " digits and inner hyphens",
        "'single-label' skipped: 'single-label' needs at least 2 labels (e.g. example.com)",
    ]
    assert found.warnings[0].startswith(f"{conf}:18: ")


def test_response_policy_zones_are_not_domains() -> None:
    found = sources.discover(bind_config(CORPUS / "statements" / "named.conf", checkconf="never"), CORPUS)
    assert dict(found.skipped)["rpz.example"] == "a response-policy zone"


def test_skip_zones_setting(tmp_path: Path) -> None:
    conf = tmp_path / "named.conf"
    conf.write_text('zone "keep.example" { type master; file "a"; };\n'
                    'zone "drop.example" { type master; file "b"; };\n'
                    'zone "x.internal.example" { type master; file "c"; };\n'
                    'zone "." { type master; file "root"; };\n')
    found = sources.discover(bind_config(conf, skip_zones=["DROP.example.", "*.internal.example"]), tmp_path)
    assert list(found.zones) == ["keep.example"]
    assert dict(found.skipped) == {"drop.example": "in [bind] skip_zones", "x.internal.example": "in [bind] skip_zones",
                                   ".": "the root zone"}


@pytest.mark.parametrize(
    "text,expected",
    [
        ('zone "a.example" { type master; };', [("a.example", "master")]),
        ("zone a.example. IN { type slave; };", [("a.example.", "slave")]),
        ('zone "a.example"{type master;};zone "b.example"{type master;};', [("a.example", "master"), ("b.example", "master")]),
        ('zone "with \\" quote" { type master; };', [('with " quote', "master")]),
        ('zone "a.example" { type master; file "x//y#z/*w*/"; };', [("a.example", "master")]),
        ("# zone \"c.example\" { type master; };\n// zone \"d.example\" { type master; };", []),
        ('/* zone "e.example" { type master; }; */ zone "f.example" { type master; };', [("f.example", "master")]),
        ('acl "x" { 10.0.0.0/8; !192.0.2.1; { 192.0.2.2; }; };', []),
    ],
)
def test_tokenizer_and_statements(text: str, expected: list[tuple[str, str]]) -> None:
    decls = namedconf.declarations(namedconf.parse_text(text))
    assert [(z.name, z.type) for z in decls.zones] == expected


@pytest.mark.parametrize(
    "file,line,message",
    [
        ("bad-class.conf", 1, "unexpected 'bogus' (expected a class such as IN, or '{')"),
        ("empty-statement.conf", 1, "syntax error near ';'"),
        ("inc/broken.conf", 2, "zone 'x.example': 'type' takes one value"),
        ("missing-include.conf", 3, "cannot read "),
        ("missing-semicolon-after-zone.conf", 2, "missing ';' before 'zone'"),
        ("missing-semicolon-in-zone.conf", 2, "zone 'a.example': 'type' takes one value"),
        ("stray-brace.conf", 2, "unexpected '}'"),
        ("unclosed-block.conf", 3, "'}' expected near end of file"),
        ("unterminated-comment.conf", 2, "unterminated /* comment"),
        ("unterminated-string.conf", 2, "unterminated quoted string"),
        ("zone-without-type.conf", 2, "zone 'b.example': type not present"),
    ],
)
def test_malformed_files_name_file_and_line(file: str, line: int, message: str) -> None:
    conf = BAD / ("error-in-include.conf" if file.startswith("inc/") else file)
    with pytest.raises(namedconf.ConfError) as info:
        namedconf.declarations(namedconf.parse_file(conf))
    assert (Path(info.value.file), info.value.line) == (BAD / file, line)
    assert info.value.message.startswith(message)
    assert str(info.value).startswith(f"{BAD / file}:{line}: ")


@pytest.mark.parametrize("file", sorted(p.name for p in BAD.glob("*.conf")))
def test_named_checkconf_refuses_the_same_files_naming_file_and_line(file: str) -> None:
    require_tool("named-checkconf", "bind9-utils")
    with pytest.raises(namedconf.ConfError) as info:
        checkconf.canonical(BAD / file)
    assert Path(info.value.file).parent in (BAD, BAD / "inc") and info.value.line > 0
    assert str(info.value).startswith(f"{info.value.file}:{info.value.line}: ")


def test_include_loop_and_glob_without_match(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text('include "b.conf";\n')
    (tmp_path / "b.conf").write_text('\ninclude "a.conf";\n')
    with pytest.raises(namedconf.ConfError, match="include loop") as info:
        namedconf.parse_file(tmp_path / "a.conf")
    assert (info.value.file, info.value.line) == (str(tmp_path / "b.conf"), 2)
    (tmp_path / "c.conf").write_text('include "nothing/*.conf";\n')
    with pytest.raises(namedconf.ConfError, match="no file matches"):
        namedconf.parse_file(tmp_path / "c.conf")


def test_directory_applies_to_later_includes_only(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "first.conf").write_text('zone "first.example" { type master; file "f"; };\n')
    (tmp_path / "sub" / "second.conf").write_text('zone "second.example" { type master; file "s"; };\n')
    (tmp_path / "named.conf").write_text(
        'include "first.conf";\noptions { directory "sub"; };\ninclude "second.conf";\n')
    decls = namedconf.declarations(namedconf.parse_file(tmp_path / "named.conf"))
    assert [z.name for z in decls.zones] == ["first.example", "second.example"]


def test_missing_named_conf_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(namedconf.ConfError, match="cannot read"):
        sources.discover(bind_config(tmp_path / "nope.conf", checkconf="never"), tmp_path)
    require_tool("named-checkconf", "bind9-utils")
    with pytest.raises(namedconf.ConfError, match="no such file"):
        sources.discover(bind_config(tmp_path / "nope.conf", checkconf="always"), tmp_path)
