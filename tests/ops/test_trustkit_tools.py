"""Each trust kit format judged by the tool it is written for (issue 20.4): rspamd's own
`rspamadm configtest` (and configdump: the addresses really reach local_addrs), `spamassassin
--lint`, real Postfix (`postfix check`, postmap, and an SMTP dialogue through the access map),
and the SPF record parsed and served by a real named. Each checker is shown once to reject a
deliberately broken snippet, so a renderer that emits something the tool refuses fails here."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import dns.message
import dns.query
import pytest

from mrod.operations import trustkit
from mrod.operations.trustkit import NodeAddresses
from tests.harness import require_tool
from tests.harness.named import Named, zone_text

NODES = [NodeAddresses("mx2", ("192.0.2.10", "2001:db8::10")), NodeAddresses("mx3", ("198.51.100.0/28",)),
         NodeAddresses("mx4", (), "it connects out from 203.0.113.9")]

# -- rspamd -------------------------------------------------------------------------------------

# configtest resolves the fuzzy servers of the stock config; the tests have no network.
_OFFLINE = re.compile(r"address resolution for fuzzy\d\.rspamd\.com failed|cannot read servers definition")


def _rspamadm(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    variables = [f"--var={name}={conf}" for name in ("CONFDIR", "LOCAL_CONFDIR")]
    return subprocess.run(["rspamadm", *variables, f"--var=DBDIR={conf.parent / 'db'}", *args, "-c",
                           str(conf / "rspamd.conf")], capture_output=True, text=True, timeout=60)


def rspamd_verdict(tmp_path: Path, kit: str) -> tuple[bool, str, Path]:
    """A private copy of Debian's /etc/rspamd with the kit's files in its local.d: (configtest
    passed with nothing complained of, the complaints, the config dir)."""
    require_tool("rspamadm", "rspamd")
    conf = tmp_path / "rspamd"
    shutil.copytree("/etc/rspamd", conf)
    (tmp_path / "db").mkdir(exist_ok=True)
    for path, text in trustkit.rspamd_files(kit).items():
        (conf / Path(path).relative_to("/etc/rspamd")).write_text(text)
    result = _rspamadm(conf, "configtest")
    complaints = [line for line in result.stderr.splitlines() if line.strip() and not _OFFLINE.search(line)]
    ok = result.returncode == 0 and "syntax OK" in result.stdout and not complaints
    return ok, "\n".join(complaints + [result.stdout.strip()]), conf


def test_rspamd_accepts_the_kit_and_reads_the_addresses(tmp_path: Path) -> None:
    ok, why, conf = rspamd_verdict(tmp_path, trustkit.render("rspamd", NODES))
    assert ok, why
    options = _rspamadm(conf, "configdump", "options").stdout
    listed = re.search(r"local_addrs \[(.*?)\]", options, re.DOTALL)
    assert listed is not None
    # added to rspamd's own defaults, not replacing them
    assert {'"192.0.2.10/32"', '"2001:db8::10/128"', '"198.51.100.0/28"', '"10.0.0.0/8"'} <= \
        {item.strip().rstrip(",") for item in listed.group(1).split()}
    relay = _rspamadm(conf, "configdump", "external_relay").stdout
    assert re.search(r"MROD_BACKUP_MX \{\s*strategy = \"local\";", relay) and "enabled = true;" in relay


def test_rspamd_check_rejects_a_broken_kit(tmp_path: Path) -> None:
    kit = trustkit.render("rspamd", NODES)
    ok, why, _conf = rspamd_verdict(tmp_path / "a", kit.replace('"local"', '"ip_map"'))     # not in rspamd 3.4
    assert not ok and "config schema error" in why
    ok, why, _conf = rspamd_verdict(tmp_path / "b", kit.replace("];", ";"))
    assert not ok and "syntax BAD" in why


# -- SpamAssassin -------------------------------------------------------------------------------


def spamassassin_verdict(tmp_path: Path, kit: str) -> tuple[bool, str]:
    """--lint with a private site config dir: Debian's .pre files (the plugins) and the kit."""
    require_tool("spamassassin", "spamassassin")
    site = tmp_path / "spamassassin"
    site.mkdir(parents=True)
    for pre in Path("/etc/spamassassin").glob("*.pre"):
        shutil.copy(pre, site)
    (site / "mrod-backup-mx.cf").write_text(kit)
    result = subprocess.run(["spamassassin", "--lint", "--siteconfigpath", str(site)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    # lint exits 0 on some bad values (an illegal address is only a warning): warnings count.
    ok = result.returncode == 0 and "warn:" not in result.stderr
    return ok, result.stderr.strip()


def test_spamassassin_lint_accepts_the_kit(tmp_path: Path) -> None:
    ok, why = spamassassin_verdict(tmp_path, trustkit.render("spamassassin", NODES))
    assert ok, why


def test_spamassassin_check_rejects_a_broken_kit(tmp_path: Path) -> None:
    kit = trustkit.render("spamassassin", NODES).replace("trusted_networks 192.0.2.10/32", "trusted_networks 192.0.2.300")
    ok, why = spamassassin_verdict(tmp_path, kit)
    assert not ok and "192.0.2.300" in why


# -- Postfix: postscreen and smtpd access maps ----------------------------------------------------

HERE = [NodeAddresses("mx2", ("127.0.0.1", "2001:db8::10")), NodeAddresses("mx3", ("198.51.100.0/28",))]


def _postfix(factory: Callable[..., Any], tmp_path: Path, postscreen: str, access: str, start: bool) -> Any:
    kit_dir = tmp_path / "kit"
    kit_dir.mkdir(exist_ok=True)
    (kit_dir / "postscreen.cidr").write_text(postscreen)
    (kit_dir / "access.cidr").write_text(access)
    os.chmod(tmp_path, 0o755)
    os.chmod(kit_dir, 0o755)
    settings = {
        "relay_domains": "example.com",
        "postscreen_access_list": f"permit_mynetworks, cidr:{kit_dir / 'postscreen.cidr'}",
        # where the kit says it goes: after reject_unauth_destination; `reject` stands for the
        # DNSBL and SPF checks the backup must be let past
        "smtpd_recipient_restrictions": f"permit_mynetworks, reject_unauth_destination, "
                                        f"check_client_access cidr:{kit_dir / 'access.cidr'}, reject",
    }
    return factory(start=start, settings=settings)


def postfix_verdict(pf: Any, table: Path, key: str) -> tuple[bool, str, str]:
    """`postfix check`, then a lookup in the cidr table: (no complaint, what was said, the value)."""
    check = pf.run("postfix", "check")
    rc, value, err = pf.postmap_q(key, f"cidr:{table}")
    said = "\n".join(s for s in (check.stderr.strip(), err) if s)
    return check.returncode == 0 and rc in (0, 1) and "warning" not in said and "fatal" not in said, said, value


@pytest.mark.postfix
def test_postfix_uses_the_kit_and_lets_only_the_backup_past(module_postfix_factory: Callable[..., Any],
                                                             tmp_path: Path) -> None:
    pf = _postfix(module_postfix_factory, tmp_path, trustkit.render("postscreen", HERE),
                  trustkit.render("postfix", HERE), start=True)
    ok, said, value = postfix_verdict(pf, tmp_path / "kit" / "postscreen.cidr", "198.51.100.9")
    assert ok and value == "permit", said
    ok, said, value = postfix_verdict(pf, tmp_path / "kit" / "access.cidr", "2001:db8::10")
    assert ok and value == "permit_auth_destination", said
    # The test client is 127.0.0.1, a backup node here: its mail for the primary's domain passes
    # the restriction that stands for the primary's DNSBL/SPF checks ...
    assert pf.rcpt_reply("joe@example.com").code == 250
    # ... and it is still no open relay (permit_auth_destination, not mynetworks).
    refused = pf.rcpt_reply("joe@elsewhere.example")
    assert refused.code >= 400 and "Relay access denied" in refused.text


@pytest.mark.postfix
def test_postfix_check_rejects_a_broken_kit(module_postfix_factory: Callable[..., Any], tmp_path: Path) -> None:
    broken = trustkit.render("postscreen", HERE).replace("198.51.100.0/28 permit", "198.51.100.300/28 permit")
    pf = _postfix(module_postfix_factory, tmp_path, broken, trustkit.render("postfix", HERE), start=False)
    ok, said, _value = postfix_verdict(pf, tmp_path / "kit" / "postscreen.cidr", "198.51.100.9")
    assert not ok and "198.51.100.300" in said


@pytest.mark.postfix
def test_without_the_kit_the_backup_is_refused(module_postfix_factory: Callable[..., Any], tmp_path: Path) -> None:
    pf = _postfix(module_postfix_factory, tmp_path, trustkit.render("postscreen", NODES),
                  trustkit.render("postfix", NODES), start=True)       # 127.0.0.1 not in it
    assert pf.rcpt_reply("joe@example.com").code == 554


# -- SPF ------------------------------------------------------------------------------------------

_MECHANISM = re.compile(r"^[-+~?]?(all|mx|a|ptr|include:\S+|exists:\S+|ip4:(\S+)|ip6:(\S+))$")


def spf_problems(record: str) -> list[str]:
    """What is wrong with an SPF record's syntax (RFC 7208 section 4.6), for the terms the kit writes."""
    terms = record.split()
    if not terms or terms[0] != "v=spf1":
        return ["does not begin with v=spf1"]
    problems = []
    for term in terms[1:]:
        found = _MECHANISM.match(term)
        if found is None:
            problems.append(f"unknown term {term!r}")
            continue
        ip4, ip6 = found.group(2), found.group(3)
        try:
            if ip4 is not None and ipaddress.ip_network(ip4).version != 4:
                problems.append(f"{term!r} is not IPv4")
            if ip6 is not None and ipaddress.ip_network(ip6).version != 6:
                problems.append(f"{term!r} is not IPv6")
        except ValueError as exc:
            problems.append(f"{term!r}: {exc}")
    return problems


def _txt_line(kit: str) -> str:
    return kit.splitlines()[-1].removeprefix("@ IN TXT ")


def _joined(strings: str) -> str:
    return "".join(re.findall(r'"([^"]*)"', strings))


def test_the_spf_kit_parses() -> None:
    kit = trustkit.render("spf", NODES)
    assert spf_problems(_joined(_txt_line(kit))) == []
    assert spf_problems("v=spf1 " + kit.splitlines()[-2] + " -all") == []
    assert spf_problems("v=spf1 ip4:192.0.2.300 ip6:192.0.2.1 ~all") == [
        "'ip4:192.0.2.300': '192.0.2.300' does not appear to be an IPv4 or IPv6 network",
        "'ip6:192.0.2.1' is not IPv6"]


@pytest.mark.bind
def test_named_serves_the_example_record(start_named: Callable[..., Named]) -> None:
    kit = trustkit.render("spf", [NodeAddresses(f"mx{i}", (f"192.0.2.{i}", f"2001:db8::{i:x}")) for i in range(1, 20)])
    server = start_named({"example.com": zone_text("example.com", kit.splitlines()[-1])})
    # over TCP: the record is larger than a UDP answer without EDNS may be
    answer = dns.query.tcp(dns.message.make_query("example.com", "TXT"), server.host, port=server.port, timeout=5)
    assert answer.answer, server.log_tail()
    record = b"".join(answer.answer[0][0].strings).decode()
    assert record == _joined(_txt_line(kit)) and spf_problems(record) == []
    assert record.startswith("v=spf1 mx ip4:192.0.2.1 ip6:2001:db8::1 ") and len(answer.answer[0][0].strings) > 1
