"""Route strategies (dns-txt, dns-dom, dns-sub) resolved against a real named on a free port."""

from __future__ import annotations

import socket

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from mrod.infra import config as configmod
from mrod.bindimport.routes import NoRoute, Route, RouteFinder
from mrod.infra.resolver import txt_relay_refs
from tests.harness.named import Named

pytestmark = pytest.mark.bind

NAMED_ZONES = {
    "txt-name.example": '@ TXT "mrodxmailrelay=primary"\n@ MX 10 mx\nmx A 192.0.2.1\nmail A 192.0.2.9\n',
    "txt-id.example": '@ TXT "mrodxmailrelay=1"\n',
    "txt-split.example": '@ TXT "v=spf1 -all"\n@ TXT "mrodxmail" "relay=primary"\n',
    "txt-case.example": '@ TXT "MRODXMAILRELAY= Primary "\n',
    "txt-custom.example": '@ TXT "route-via=backup"\n@ TXT "mrodxmailrelay=primary"\n',
    "txt-other.example": '@ TXT "v=spf1 -all"\n@ MX 10 mx\nmx A 192.0.2.1\n',
    "txt-two.example": '@ TXT "mrodxmailrelay=primary"\n@ TXT "mrodxmailrelay=backup"\n',
    "txt-empty.example": '@ TXT "mrodxmailrelay="\n',
    "mx.example": "@ MX 10 mx1.elsewhere.example.\n",
    "nullmx.example": "@ MX 0 .\nmail A 192.0.2.3\n",
    "sub.example": "mail A 192.0.2.4\n",
    "sub6.example": "mail AAAA 2001:db8::4\n",
    "smtp-label.example": "smtp A 192.0.2.5\n",
    "none.example": "",
}


def finder(named: Named, **values) -> RouteFinder:
    bind = configmod.from_dict({"bind": {
        "resolver": "127.0.0.1", "resolver_port": named.port, "dns_timeout": 2.0,
        "strategies": ["dns-txt", "dns-dom", "dns-sub"], **values}}).bind
    return RouteFinder(bind)


@pytest.mark.parametrize(
    "domain,expected",
    [
        ("txt-name.example", Route("dns-txt", relay_ref="primary")),
        ("txt-id.example", Route("dns-txt", relay_ref="1")),
        ("txt-split.example", Route("dns-txt", relay_ref="primary")),
        ("txt-case.example", Route("dns-txt", relay_ref="Primary")),
        ("txt-other.example", Route("dns-dom")),
        ("mx.example", Route("dns-dom")),
        ("nullmx.example", Route("dns-sub", host="mail.nullmx.example", port=25)),
        ("sub.example", Route("dns-sub", host="mail.sub.example", port=25)),
        ("sub6.example", Route("dns-sub", host="mail.sub6.example", port=25)),
    ],
)
async def test_strategies_in_order(named: Named, domain: str, expected: Route) -> None:
    assert await finder(named).find(domain) == expected


@pytest.mark.parametrize(
    "domain,reason",
    [
        ("txt-two.example", "several mrodxmailrelay= TXT records disagree: backup, primary"),
        ("txt-empty.example", "the mrodxmailrelay= TXT record names no relay"),
        ("none.example", "no usable route (no mrodxmailrelay= TXT record; no MX record; mail.none.example has no address)"),
        ("gone.none.example", "gone.none.example does not exist in DNS"),
    ],
)
async def test_no_usable_route(named: Named, domain: str, reason: str) -> None:
    assert await finder(named).find(domain) == NoRoute(reason)


async def test_settings_change_prefix_label_port_and_order(named: Named) -> None:
    custom = finder(named, txt_prefix="route-via=", sub_label="smtp", sub_port=2525)
    assert await custom.find("txt-custom.example") == Route("dns-txt", relay_ref="backup")
    assert await custom.find("smtp-label.example") == Route("dns-sub", host="smtp.smtp-label.example", port=2525)
    sub_first = finder(named, strategies=["dns-sub", "dns-txt"])
    assert await sub_first.find("txt-name.example") == Route("dns-sub", host="mail.txt-name.example", port=25)
    txt_only = finder(named, strategies=["dns-txt"])
    assert await txt_only.find("mx.example") == NoRoute("no usable route (no mrodxmailrelay= TXT record)")


async def test_dns_failure_is_reported_for_that_domain_only(named: Named) -> None:
    results = await finder(named).find_all(["txt-name.example", "not-served.test"])
    assert results["txt-name.example"] == Route("dns-txt", relay_ref="primary")
    failure = results["not-served.test"]
    assert isinstance(failure, NoRoute)
    assert failure.temporary
    assert failure.reason == "DNS lookup failed: TXT lookup of not-served.test failed (SERVFAIL or REFUSED)"


async def test_a_silent_resolver_times_out_within_the_limit() -> None:
    # A UDP socket that reads queries and never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        bind = configmod.from_dict({"bind": {"resolver": "127.0.0.1", "resolver_port": silent.getsockname()[1],
                                             "dns_timeout": 0.3}}).bind
        result = await RouteFinder(bind).find("example.com")
    assert result == NoRoute("DNS lookup failed: TXT lookup of example.com timed out", temporary=True)


async def test_many_domains_concurrently_bounded(named: Named) -> None:
    names = [f"n{i}.none.example" for i in range(200)] + list(NAMED_ZONES)
    results = await finder(named, dns_concurrency=8).find_all(names)
    assert set(results) == set(names)
    assert all(results[n] == NoRoute(f"{n} does not exist in DNS") for n in names[:200])
    assert results["mx.example"] == Route("dns-dom")



def test_txt_relay_refs_is_the_one_parser_of_the_txt_route() -> None:
    # The importer (RouteFinder) and the DNS checks both read TXT routes through it.
    def txt(*parts: str) -> object:
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, " ".join(f'"{p}"' for p in parts))

    records = [txt("v=spf1 -all"), txt("MRODxMailRelay= primary "), txt("mrodxmail", "relay=backup"), txt("mrodxmailrelay=")]
    assert txt_relay_refs(records, "mrodxmailrelay=") == {"primary", "backup", ""}
    assert txt_relay_refs([txt("v=spf1 -all")], "mrodxmailrelay=") == set()
