"""Warnings and plan lines point at the line that declares a zone — with the default
``checkconf = auto`` (real named-checkconf -p, which keeps no positions) as with mrod's own
parser — including zones declared in included files and in views."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrod.bindimport import checkconf, namedconf, sources
from mrod.cli import main
from mrod.infra import config as configmod
from tests.bind.test_cli_bind import write_config
from tests.harness import require_tool
from tests.harness.named import zone_text

pytestmark = pytest.mark.bind

INCLUDED = """\
// zones kept in a file of their own
zone "inner.example" { type primary; file "inner.example.db"; };

zone "under_score.example" {
    type primary;
    file "inner.example.db";
};
"""


def test_cli_plan_and_warnings_name_the_declaring_file_and_line(
        start_named, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("named-checkconf", "bind9-utils")
    directory = tmp_path / "named"
    (directory / "inc").mkdir(parents=True)
    (directory / "inc" / "zones.conf").write_text(INCLUDED)
    (directory / "inner.example.db").write_text(zone_text("inner.example", "@ MX 10 mx\nmx A 192.0.2.1\n"))
    named = start_named({"outer.example": zone_text("outer.example", "@ MX 10 mx\nmx A 192.0.2.1\n")},
                        extra='include "inc/zones.conf";')
    config = write_config(tmp_path, named, strategies='["dns-dom"]')   # checkconf = auto (default)
    assert main(["--config", str(config), "init"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "import-bind", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    included = directory / "inc" / "zones.conf"
    outer_line = named.conf.read_text().splitlines().index(
        'zone "outer.example" { type primary; file "outer.example.db"; };') + 1
    assert lines[0] == f"read     {named.conf} (named-checkconf -p)"
    assert f"add      inner.example  new zone ({included}:2), dns-dom: by its MX records" in lines
    assert f"add      outer.example  new zone ({named.conf}:{outer_line}), dns-dom: by its MX records" in lines
    [warning] = [ln for ln in lines if ln.startswith("warning")]
    assert warning.startswith(f"warning  {included}:4: zone 'under_score.example' skipped: ")


def test_views_are_located_through_named_checkconf(tmp_path: Path) -> None:
    require_tool("named-checkconf", "bind9-utils")
    (tmp_path / "views.conf").write_text(
        'view "internal" {\n  match-clients { 127.0.0.1; };\n  zone "both.example" { type primary; file "a"; };\n};\n'
        'view "external" {\n  zone "both.example" { type primary; file "b"; };\n'
        '  zone "only_ext.example" { type primary; file "c"; };\n};\n')
    conf = tmp_path / "named.conf"
    conf.write_text('options { directory "%s"; };\ninclude "views.conf";\n' % tmp_path)
    found = sources.discover(configmod.from_dict({"bind": {"named_conf": str(conf)}}).bind, tmp_path)
    assert found.readers == [f"{conf} (named-checkconf -p)"]
    assert found.zones["both.example"].where == f"{tmp_path / 'views.conf'}:3 (view internal)"
    assert found.warnings[0].startswith(f"{tmp_path / 'views.conf'}:7 (view external): zone 'only_ext.example'")


def test_zones_mrods_parser_cannot_read_keep_named_conf_without_a_line(tmp_path: Path) -> None:
    """When mrod's parser cannot read the files that named-checkconf read (here: changed
    between the two readings), the zones keep named.conf's path, and the reader says why."""
    require_tool("named-checkconf", "bind9-utils")
    conf = tmp_path / "named.conf"
    conf.write_text('zone "a.example" { type primary; file "a"; };\n')
    decls = namedconf.declarations(namedconf.parse_text(checkconf.canonical(conf), "canonical"))
    conf.write_text('zone "a.example" { type primary; file "a"; }\n')     # now missing its ';'
    why = sources._locate(decls, conf)
    assert why == f"{conf}:1: missing ';' at end of file (after 'zone a.example')"
    assert [(z.file, z.line) for z in decls.zones] == [(str(conf), 0)]
