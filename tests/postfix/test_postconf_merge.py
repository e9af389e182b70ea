"""`mrod postfix-config --postconf / --apply` (issue 12.4) against real `postconf -c DIR`:
a Debian "Internet Site" main.cf with the operator's own RBL/SPF checks, and Debian's
"No configuration" install (no main.cf). Merged, never duplicated, idempotent."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from mrod.answers import postconfplan
from mrod.cli import main
from mrod.cli import postfixconfig as postconfcli
from mrod.infra import config as configmod
from tests.data import seed_file_sync
from tests.harness import require_tool

MASTER_CF = Path("/usr/share/postfix/master.cf.dist")
MAIN_CF_DEBIAN = Path("/usr/share/postfix/main.cf.debian")
# What Debian's postinst adds to main.cf.debian for "Internet Site" (postfix 3.7, bookworm),
# plus an operator's own transport map, RBL and SPF policy checks.
INTERNET_SITE = """
smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key
smtpd_tls_security_level=may
smtp_tls_CApath=/etc/ssl/certs
smtp_tls_security_level=may
smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
myhostname = mx2.example.net
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
myorigin = /etc/mailname
mydestination = $myhostname, mx2.example.net, localhost.example.net, localhost
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = all
inet_protocols = all
transport_maps = hash:/etc/postfix/transport
smtpd_recipient_restrictions = permit_mynetworks,
    reject_unauth_destination,
    reject_rbl_client zen.spamhaus.org,
    check_policy_service unix:private/policyd-spf,
    permit
maximal_queue_lifetime = 2d
"""

pytestmark = pytest.mark.postfix


@pytest.fixture
def postconf() -> str:
    return require_tool("postconf", "postfix")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """mrod's default endpoints (as the shipped snippets name them)."""
    path = tmp_path / "mrod.toml"
    path.write_text("")
    return path


def _postfix_dir(tmp_path: Path, main_cf: str | None) -> Path:
    directory = tmp_path / "postfix"
    directory.mkdir()
    shutil.copy(MASTER_CF if MASTER_CF.exists() else "/etc/postfix/master.cf", directory / "master.cf")
    if main_cf is not None:
        (directory / "main.cf").write_text(main_cf)
    return directory


def _printed(config_file: Path, directory: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["--config", str(config_file), "postfix-config", "--postconf", "--postfix-dir", str(directory)]) == 0
    return capsys.readouterr().out.splitlines()


def _run_printed(lines: list[str]) -> None:
    for line in lines:
        if line and not line.startswith("#"):
            subprocess.run(["sh", "-c", line], check=True, capture_output=True, timeout=30)


def _settings(postconf: str, directory: Path) -> dict[str, str]:
    out = subprocess.run([postconf, "-c", str(directory), "-n"], check=True, capture_output=True, text=True).stdout
    return postconfplan.parse_main_cf(out)


def test_internet_site_keeps_the_operators_checks(postconf: str, tmp_path: Path, config_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    directory = _postfix_dir(tmp_path, MAIN_CF_DEBIAN.read_text() + INTERNET_SITE)
    before = _settings(postconf, directory)
    lines = _printed(config_file, directory, capsys)
    assert not any(line.startswith("touch") for line in lines)
    _run_printed(lines)
    after = _settings(postconf, directory)
    sm = "socketmap:inet:127.0.0.1:10101"
    assert postconfplan.split_list(after["smtpd_recipient_restrictions"]) == [
        "permit_mynetworks", "reject_unauth_destination", "reject_rbl_client", "zen.spamhaus.org",
        "check_policy_service", "unix:private/policyd-spf", "check_policy_service", "inet:127.0.0.1:10102",
        "permit"]
    assert after["transport_maps"] == f"hash:/etc/postfix/transport, {sm}:transport"   # theirs first
    assert after["relay_domains"] == f"{sm}:relay_domains"
    # Already refusing unauthorised relaying, and the same recipient_delimiter: left alone.
    assert after["smtpd_relay_restrictions"] == before["smtpd_relay_restrictions"]
    assert after["maximal_queue_lifetime"] == "5d"                  # 2d is too short for a backup MX
    assert "bounce_queue_lifetime" not in after                     # Postfix's default 5d will do
    for key in ("mydestination", "myhostname", "alias_maps", "smtpd_tls_cert_file", "mynetworks"):
        assert after[key] == before[key]
    master = subprocess.run([postconf, "-c", str(directory), "-M", "mrod-smtps/unix"], check=True,
                            capture_output=True, text=True).stdout
    assert master.split()[:8] == ["mrod-smtps", "unix", "-", "-", "n", "-", "-", "smtp"]
    # Run again: nothing to change, no parameter or check twice.
    again = _printed(config_file, directory, capsys)
    assert again[1:] == ["# nothing to change: Postfix is already set up for mrod"]
    main_cf = (directory / "main.cf").read_text()
    assert main_cf.count("\nsmtpd_recipient_restrictions =") == 1 and main_cf.count("inet:127.0.0.1:10102") == 1


def test_no_configuration_install_gets_the_minimum(postconf: str, tmp_path: Path, config_file: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    directory = _postfix_dir(tmp_path, None)
    lines = _printed(config_file, directory, capsys)
    commands = [line for line in lines if not line.startswith("#")]
    assert "no main.cf yet" in lines[0] and commands[0] == f"touch {directory / 'main.cf'}"
    _run_printed(lines)
    after = _settings(postconf, directory)
    assert after["mydestination"] == "$myhostname, localhost.$mydomain, localhost"
    assert after["inet_interfaces"] == "all" and after["mynetworks"].startswith("127.0.0.0/8")
    assert after["smtpd_recipient_restrictions"] == "check_policy_service inet:127.0.0.1:10102"
    assert after["smtpd_relay_restrictions"] == "permit_mynetworks, reject_unauth_destination"
    check = subprocess.run(["postfix", "-c", str(directory), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert _printed(config_file, directory, capsys)[1:] == ["# nothing to change: Postfix is already set up for mrod"]


def test_apply_shows_a_diff_then_starts_or_reloads(config_file: Path, postfix_factory, mrod_factory,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    m = mrod_factory()
    instance = postfix_factory(None, start=False)      # hermetic main.cf, none of mrod's settings
    directory = instance.etc
    text = m.config_path.read_text()
    capsys.readouterr()
    args = ["--config", str(m.config_path), "postfix-config", "--apply", "--postfix-dir", str(directory)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"+ relay_domains = {m.socketmap_table('relay_domains')}" in out
    assert out.rstrip().endswith("Postfix started")
    assert instance.postmap_q("nothere.example", instance.postconf("relay_domains"))[0] == 1   # asks mrod
    m.cli("relay", "add", "primary", "--host", "192.0.2.1")
    m.cli("domain", "add", "example.com", "--relay", "primary")
    assert instance.rcpt_reply("joe@example.com").code == 250
    assert main(args) == 0
    assert "nothing to change" in capsys.readouterr().out
    # An operator shortens the queue lifetime; applying again puts it back and reloads.
    instance.run("postconf", "-e", "maximal_queue_lifetime = 1d")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "- maximal_queue_lifetime = 1d\n+ maximal_queue_lifetime = 5d\n" in out
    assert out.rstrip().endswith("1 change(s) made; Postfix reloaded")
    assert instance.postconf("maximal_queue_lifetime") == "5d"
    assert instance.rcpt_reply("joe@example.com").code == 250
    assert m.config_path.read_text() == text


@pytest.mark.parametrize("fqdn", ["localhost", "localhost.localdomain", "vm"])
def test_a_host_named_localhost_gets_no_myhostname_line(postconf: str, tmp_path: Path, fqdn: str, config_file: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A host whose FQDN resolves to localhost: `myhostname = localhost` would make this backup MX
    greet every server as localhost; the line is left out, and the output says why."""
    directory = _postfix_dir(tmp_path, None)
    args = argparse.Namespace(postfix_dir=str(directory), apply=False)
    assert postconfcli.run(args, configmod.load(config_file, env={}), fqdn=fqdn) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any("myhostname =" in line for line in lines if not line.startswith("#"))
    [why] = [line for line in lines if line.startswith("# WARNING: myhostname is left out")]
    assert f"resolves to {fqdn!r}" in why and "postconf -e 'myhostname = mx2.example.net'" in why
    _run_printed(lines)
    assert "myhostname" not in _settings(postconf, directory)
    check = subprocess.run(["postfix", "-c", str(directory), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_qualified_host_name_becomes_myhostname(postconf: str, tmp_path: Path, config_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    directory = _postfix_dir(tmp_path, None)
    args = argparse.Namespace(postfix_dir=str(directory), apply=False)
    assert postconfcli.run(args, configmod.load(config_file, env={}), fqdn="mx2.example.net") == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"postconf -c {directory} -e 'myhostname = mx2.example.net'" in lines
    assert not any("left out" in line for line in lines)
    _run_printed(lines)
    assert _settings(postconf, directory)["myhostname"] == "mx2.example.net"


def test_the_longest_domain_lifetime_raises_postfix_s(postconf: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Retention: a domain that keeps mail 3 weeks needs maximal_queue_lifetime of 3 weeks —
    said as a warning and emitted as a change; a shorter one changes nothing."""
    config = tmp_path / "mrod.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "mrod.db"}"\n')
    seed_file_sync(tmp_path / "mrod.db", relays=[{"name": "p", "host": "127.0.0.1"}],
                   domains=[{"name": "long.example", "relay": "p", "queue_lifetime": "3w"},
                            {"name": "short.example", "relay": "p", "queue_lifetime": "1d"}])
    directory = _postfix_dir(tmp_path, MAIN_CF_DEBIAN.read_text() + INTERNET_SITE)
    lines = _printed(config, directory, capsys)
    assert any("long.example keeps mail for 3w" in line for line in lines if line.startswith("# WARNING"))
    _run_printed(lines)
    assert _settings(postconf, directory)["maximal_queue_lifetime"] == "3w"
    assert not any("WARNING" in line for line in _printed(config, directory, capsys))
