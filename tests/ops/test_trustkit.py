"""The trust kit (issue 20.4): [node] public_addresses validated at load, reported with each node's
status row (migration 0013) so any node prints the kit for the whole cluster, and the five
renderers' shape. The tools themselves judge the output in test_trustkit_tools.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mrod.cli import main
from mrod.infra import config as configmod
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.enums import TRUST_KIT_FORMATS
from mrod.infra.errors import ConfigError, InvalidInput
from mrod.operations import nodereports, trustkit
from mrod.operations.trustkit import NodeAddresses


def test_public_addresses_are_normalised(tmp_path: Path) -> None:
    cfg = configmod.from_dict({"node": {"public_addresses": [" 192.0.2.10", "2001:DB8::10", "2001:db8:1::/48",
                                                              "198.51.100.7/32"]}}, base_dir=tmp_path)
    assert cfg.node.public_addresses == ("192.0.2.10", "2001:db8::10", "2001:db8:1::/48", "198.51.100.7")
    assert configmod.from_dict({}, base_dir=tmp_path).node.public_addresses == ()


@pytest.mark.parametrize(("value", "message"), [
    ('["192.0.2.300"]', "'192.0.2.300' is not an IPv4/IPv6 address or CIDR network"),
    ('["mx2.example.net"]', "'mx2.example.net' is not an IPv4/IPv6 address"),
    ('["192.0.2.1/24"]', "'192.0.2.1/24' has host bits set: write the network, 192.0.2.0/24"),
    ('["192.0.2.10", "192.0.2.10/32"]', "lists 192.0.2.10 twice"),
    ('"192.0.2.10"', "node.public_addresses"),
])
def test_bad_public_addresses_are_one_line_errors(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "mrod.toml"
    path.write_text(f"[node]\npublic_addresses = {value}\n")
    with pytest.raises(ConfigError) as caught:
        configmod.load(path, env={})
    text = str(caught.value)
    assert "node.public_addresses" in text and message in text and "\n" not in text


NODES = [NodeAddresses("mx2", ("192.0.2.10", "2001:db8::10")), NodeAddresses("mx3", ("198.51.100.0/28",)),
         NodeAddresses("mx4", (), "it connects out from 203.0.113.9")]


@pytest.mark.parametrize("fmt", TRUST_KIT_FORMATS)
def test_every_format_says_what_it_is_and_names_a_node_without_addresses(fmt: str) -> None:
    text = trustkit.render(fmt, NODES)
    assert text.startswith("# mrod trust kit (")
    assert "# node mx2: 192.0.2.10 2001:db8::10" in text
    assert "# node mx4: NO [node] public_addresses set, so it is missing below " \
           "(hint: it connects out from 203.0.113.9)" in text
    assert "203.0.113.9" not in "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_what_each_format_lists() -> None:
    rules = [line for line in trustkit.render("postscreen", NODES).splitlines() if not line.startswith("#")]
    assert rules == ["192.0.2.10/32 permit", "2001:db8::10/128 permit", "198.51.100.0/28 permit"]
    postfix = trustkit.render("postfix", NODES)
    assert "198.51.100.0/28 permit_auth_destination" in postfix.splitlines()
    assert "add to mynetworks: 192.0.2.10/32 [2001:db8::10]/128 198.51.100.0/28" in postfix
    sa = trustkit.render("spamassassin", NODES).splitlines()
    assert "trusted_networks 192.0.2.10/32 2001:db8::10/128 198.51.100.0/28" in sa
    assert "internal_networks 192.0.2.10/32 2001:db8::10/128 198.51.100.0/28" in sa
    spf = trustkit.render("spf", NODES).splitlines()
    assert spf[-2:] == ["ip4:192.0.2.10 ip6:2001:db8::10 ip4:198.51.100.0/28",
                        '@ IN TXT "v=spf1 mx ip4:192.0.2.10 ip6:2001:db8::10 ip4:198.51.100.0/28 ~all"']
    files = trustkit.rspamd_files(trustkit.render("rspamd", NODES))
    assert sorted(files) == ["/etc/rspamd/local.d/external_relay.conf", "/etc/rspamd/local.d/options.inc"]
    assert '"198.51.100.0/28",' in files["/etc/rspamd/local.d/options.inc"]
    assert 'strategy = "local";' in files["/etc/rspamd/local.d/external_relay.conf"]


def test_a_long_spf_record_is_split_into_txt_strings() -> None:
    many = [NodeAddresses(f"mx{i}", (f"192.0.2.{i}",)) for i in range(1, 40)]
    line = trustkit.render("spf", many).splitlines()[-1]
    strings = line.removeprefix("@ IN TXT ").split('" "')
    assert len(strings) > 1 and all(len(s.strip('"')) <= 255 for s in strings)
    assert "".join(s.strip('"') for s in strings).endswith("ip4:192.0.2.39 ~all")


def test_nothing_known_still_renders_and_says_so() -> None:
    for fmt in TRUST_KIT_FORMATS:
        text = trustkit.render(fmt, [NodeAddresses("mx2", ())])
        assert "# node mx2: NO [node] public_addresses set" in text
    with pytest.raises(InvalidInput):
        trustkit.render("exim", NODES)


def _node(tmp_path: Path, cfg: Config, name: str, addresses: list[str]) -> Path:
    """A config file of another node on the same database."""
    path = tmp_path / f"{name}.toml"
    where = (f'url = "{cfg.database.url}"\npassword_file = "{cfg.database.password_file}"\n'
             if cfg.database.url else "")
    listed = ", ".join(f'"{a}"' for a in addresses)
    path.write_text(f'[database]\npath = "{cfg.database.path}"\n{where}[lookupd]\nsocketmap = "127.0.0.1:0"\n'
                    f'policy = ""\n[node]\nname = "{name}"\nstate_dir = "{tmp_path / name}"\n'
                    f"public_addresses = [{listed}]\n")
    return path


def test_any_node_prints_the_kit_of_the_whole_cluster(tmp_path: Path, cfg: Config,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    mx2 = configmod.load(_node(tmp_path, cfg, "mx2", ["192.0.2.10", "2001:db8::10"]), env={})

    async def reports() -> Any:
        # The node status job (PostgreSQL): mx2's own addresses go with its status row.
        status = await nodereports.report(mx2)
        async with db.opened(cfg.database) as conn:
            if status is None:          # SQLite keeps no node rows: store what a report would
                await nodereports.upsert(conn, "mx2", None, False, public_addresses=mx2.node.public_addresses)
            await nodereports.upsert(conn, "mx5", None, False)          # a node with none set
            return await nodereports.public_addresses(conn)

    assert asyncio.run(reports()) == {"mx2": ("192.0.2.10", "2001:db8::10"), "mx5": ()}
    capsys.readouterr()
    code = main(["--config", str(_node(tmp_path, cfg, "mx3", ["198.51.100.0/28"])), "trust-kit",
                 "--format", "postscreen"])
    out = capsys.readouterr().out
    assert code == 0
    rules = [line for line in out.splitlines() if not line.startswith("#")]
    assert rules == ["192.0.2.10/32 permit", "2001:db8::10/128 permit", "198.51.100.0/28 permit"]
    assert "# node mx5: NO [node] public_addresses set" in out


def test_a_bad_format_is_a_usage_error(tmp_path: Path, cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(_node(tmp_path, cfg, "mx3", [])), "trust-kit", "--format", "exim"])
    assert caught.value.code == 2
    assert "invalid choice: 'exim' (choose from 'rspamd', 'spamassassin'" in capsys.readouterr().err
