"""Catalog zones (RFC 9432): members read from a zone, and pulled by AXFR from a real named."""

from __future__ import annotations

import socket
from pathlib import Path

import dns.zone
import pytest

from mrod.infra import config as configmod
from mrod.bindimport import catalog, sources
from mrod.infra.errors import MrodError
from tests.harness.named import zone_text

CATALOG = (
    'version TXT "2"\n'
    "m1.zones PTR member-one.example.\n"
    "m2.zones PTR Member-Two.Example.\n"
    "group.m2.zones TXT \"customers\"\n"     # a property, not a member
    "coo.m1.zones PTR other-catalog.example.\n"  # a property, not a member
    "m3.zones PTR bad_name.example.\n"
    "broken.zones PTR a.example.\n"
    "broken.zones PTR b.example.\n"
)


def test_members_of_a_catalog() -> None:
    zone = dns.zone.from_text(zone_text("catalog.test", CATALOG), origin="catalog.test", relativize=True)
    found = catalog.members(zone, "catalog catalog.test")
    assert found.members == ["Member-Two.Example", "bad_name.example", "member-one.example"]
    assert found.warnings == ["catalog catalog.test: member broken has 2 PTR records; ignored"]


@pytest.mark.parametrize("version", ['version TXT "3"\n', "", 'version TXT "1"\nversion TXT "2"\n'])
def test_not_a_supported_catalog(version: str) -> None:
    zone = dns.zone.from_text(zone_text("catalog.test", version + "m1.zones PTR a.example.\n"),
                              origin="catalog.test", relativize=True)
    with pytest.raises(catalog.CatalogError, match="not a catalog zone"):
        catalog.members(zone, "catalog catalog.test")


def bind_config(port: int, **values) -> configmod.BindConfig:
    return configmod.from_dict({"bind": {
        "sources": ["catalog"], "catalog_server": "127.0.0.1", "catalog_port": port,
        "catalog_zones": ["catalog.test"], "dns_timeout": 1.0, **values}}).bind


@pytest.mark.bind
def test_catalog_by_axfr_from_named(start_named, tmp_path: Path) -> None:
    named = start_named({"catalog.test": zone_text("catalog.test", CATALOG)})
    found = sources.discover(bind_config(named.port), tmp_path)
    assert sorted(found.zones) == ["member-one.example", "member-two.example"]
    assert {z.source for z in found.zones.values()} == {"catalog"}
    assert found.zones["member-one.example"].where == "catalog catalog.test"
    assert any("bad_name.example" in w for w in found.warnings)
    assert any("broken has 2 PTR records" in w for w in found.warnings)
    assert found.readers == ["catalog catalog.test (3 members)"]


@pytest.mark.bind
def test_refused_transfer_and_unknown_catalog_are_errors(start_named, tmp_path: Path) -> None:
    named = start_named({"catalog.test": zone_text("catalog.test", CATALOG)},
                        extra='zone "closed.test" { type primary; file "catalog.test.db"; allow-transfer { none; }; };')
    with pytest.raises(catalog.CatalogError, match=r"catalog zone closed.test from 127.0.0.1 port \d+: transfer refused"):
        sources.discover(bind_config(named.port, catalog_zones=["closed.test"]), tmp_path)
    with pytest.raises(catalog.CatalogError, match="transfer refused"):
        sources.discover(bind_config(named.port, catalog_zones=["nosuch.test"]), tmp_path)


def test_silent_or_closed_server_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as listener:     # accepts TCP, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(catalog.CatalogError, match="no answer within"):
            catalog.fetch("127.0.0.1", listener.getsockname()[1], "catalog.test", lifetime=0.5)
        port = listener.getsockname()[1]
    with pytest.raises(catalog.CatalogError, match="catalog zone catalog.test from 127.0.0.1"):
        catalog.fetch("127.0.0.1", port, "catalog.test", lifetime=0.5)


def test_catalog_source_needs_a_catalog(tmp_path: Path) -> None:
    with pytest.raises(MrodError, match="catalog_zones lists no catalog zone"):
        sources.discover(bind_config(53, catalog_zones=[]), tmp_path)
