"""Zone directories: names from file names; journals, BIND state and non-zone files passed over;
raw-format secondary zones (made by BIND's own named-compilezone) recognised."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.bindimport import namedconf, sources, zonedir
from tests.harness import require_tool
from tests.harness.named import zone_text


@pytest.mark.parametrize(
    "file_name,zone",
    [
        ("example.com", "example.com"),
        ("db.example.com", "example.com"),
        ("example.com.db", "example.com"),
        ("example.com.zone", "example.com"),
        ("example.com.db.signed", "example.com"),
        ("db.example", "db.example"),          # "db." is a prefix only when a full name remains
        ("Example.ORG.hosts", "Example.ORG"),
    ],
)
def test_zone_name_from_file_name(file_name: str, zone: str) -> None:
    assert zonedir.zone_name(file_name) == zone


def write_zone(directory: Path, file_name: str, origin: str) -> Path:
    path = directory / file_name
    path.write_text(zone_text(origin))
    return path


def test_scan_passes_over_what_is_not_a_zone(tmp_path: Path) -> None:
    write_zone(tmp_path, "db.alpha.example", "alpha.example")
    write_zone(tmp_path, "beta.example.zone", "beta.example")
    for name in ("alpha.example.jnl", "_default.nzd", "_default.nzf", "managed-keys.bind",
                 "managed-keys.bind.jnl", "__catz___default_catalog.example_member.example.db",
                 "Kexample.com.+013+12345.key", "Kexample.com.+013+12345.private", "tmp-AbCdEf1234"):
        (tmp_path / name).write_text("$TTL 1\n@ SOA a b 1 1 1 1 1\n")
    (tmp_path / "notes.example").write_text("just some notes, no records\n")
    (tmp_path / "empty.example").write_bytes(b"")
    (tmp_path / "binary.example").write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64)
    (tmp_path / "subdir.example").mkdir()
    scan = zonedir.scan(tmp_path)
    assert sorted(z.name for z in scan.zones) == ["alpha.example", "beta.example"]
    assert sorted(p.name for p, _ in scan.passed_over) == ["binary.example", "empty.example", "notes.example"]


def test_raw_format_files_are_zones(tmp_path: Path) -> None:
    program = require_tool("named-compilezone", "bind9-utils")
    source = write_zone(tmp_path, "source.txt", "raw.example")
    out = tmp_path / "zones"
    out.mkdir()
    for fmt, name in (("raw", "raw.example"), ("raw=0", "raw0.example")):
        subprocess.run([program, "-q", "-F", fmt, "-o", str(out / f"{name}.db"), "raw.example", str(source)],
                       check=True, timeout=30)
    assert (out / "raw.example.db").read_bytes()[:4] == b"\x00\x00\x00\x02"
    scan = zonedir.scan(out)
    assert sorted(z.name for z in scan.zones) == ["raw.example", "raw0.example"]


def bind_config(**values) -> configmod.BindConfig:
    return configmod.from_dict({"bind": {"sources": ["zone-dir"], **values}}).bind


def test_zone_dir_source_validates_names_and_skips(tmp_path: Path) -> None:
    cache, lib = tmp_path / "cache", tmp_path / "lib"
    cache.mkdir()
    lib.mkdir()
    write_zone(cache, "db.one.example", "one.example")
    write_zone(cache, "Two.Example.", "two.example")
    write_zone(cache, "db.0.in-addr.arpa", "0.in-addr.arpa")
    write_zone(cache, "bad_name.example", "bad_name.example")
    write_zone(lib, "one.example.db", "one.example")         # the same zone twice: once
    write_zone(lib, "three.example", "three.example")
    found = sources.discover(bind_config(zone_dirs=["cache", str(lib)]), tmp_path)
    assert sorted(found.zones) == ["one.example", "three.example", "two.example"]
    assert found.zones["one.example"].where == str(cache / "db.one.example")
    assert ("0.in-addr.arpa", "in [bind] skip_zones") in found.skipped
    assert len(found.warnings) == 1 and "bad_name.example" in found.warnings[0]


def test_missing_or_unreadable_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(namedconf.ConfError, match="cannot read zone directory") as info:
        sources.discover(bind_config(zone_dirs=[str(tmp_path / "nope")]), tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'nope'}: ")
    (tmp_path / "file").write_text("x")
    with pytest.raises(namedconf.ConfError, match="cannot read zone directory"):
        sources.discover(bind_config(zone_dirs=[str(tmp_path / "file")]), tmp_path)
