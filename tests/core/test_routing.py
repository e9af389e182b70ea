"""Every answer Postfix can get, from one dataset, through mrod.answers.routing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrod.answers import routing
from mrod.answers.routestore import RouteStore
from tests.data import seed_file


DATA = dict(
    relays=[dict(name="primary", host="mx1.example.net", port=25, tls="encrypt"),
            dict(name="tls465", host="mx2.example.net", port=465, protocol="smtps"),
            dict(name="v6", host="2001:db8::25", port=2525, tls="verify"),
            dict(name="plain", host="mx3.example.net")],
    domains=[dict(name="example.com", relay="primary", include_subdomains=True),
             dict(name="only.example.org", relay="plain"),
             dict(name="off.example.org", relay="plain", enabled=False),
             dict(name="sub.off.example.org", relay="plain"),
             dict(name="nosub.example.com", relay="plain"),   # exact row under a parent
             dict(name="bücher.example", relay="tls465", recipients="listed"),
             dict(name="listed.example", relay="v6", recipients="listed"),
             dict(name="catchall.example", relay="plain", recipients="listed"),
             dict(name="own.example", host="10.0.0.7", port=2526, tls="secure"),
             dict(name="mx.example", mx=True, tls="verify"),
             dict(name="mxplain.example", mx=True, include_subdomains=True),
             dict(name="verify.example", relay="plain", recipients="verify")],
    recipients=["joe@bücher.example", "Sales@listed.example", '"john doe"@listed.example',
                "postmaster@listed.example", "@catchall.example"],
)


@pytest.fixture
async def store(tmp_path: Path):
    path = tmp_path / "r.db"
    await seed_file(path, **DATA)
    s = RouteStore.open(path)
    yield s
    s.close()


OK, NF = routing.OK, routing.NOTFOUND

CASES = [
    # relay_domains: the exact domain, parents only with include_subdomains, disabled -> NOTFOUND
    ("relay_domains", "example.com", OK, "example.com"),
    ("relay_domains", "a.b.example.com", OK, "example.com"),
    ("relay_domains", "nosub.example.com", OK, "nosub.example.com"),
    ("relay_domains", "x.nosub.example.com", OK, "example.com"),   # a further parent includes subdomains
    ("relay_domains", "only.example.org", OK, "only.example.org"),
    ("relay_domains", "x.only.example.org", NF, ""),
    ("relay_domains", "off.example.org", NF, ""),
    ("relay_domains", "sub.off.example.org", OK, "sub.off.example.org"),
    ("relay_domains", "xn--bcher-kva.example", OK, "xn--bcher-kva.example"),
    ("relay_domains", "bücher.example", OK, "xn--bcher-kva.example"),
    ("relay_domains", "example.net", NF, ""),
    ("relay_domains", "[192.0.2.1]", NF, ""),
    ("relay_domains", "com", NF, ""),
    ("relay_domains", "", NF, ""),
    # transport: full addresses in envelope case, and '*'
    ("transport", "*", NF, ""),
    ("transport", "User+tag@Sub.Example.COM", OK, "relay:[mx1.example.net]:25"),
    ("transport", "user@example.com", OK, "relay:[mx1.example.net]:25"),
    ("transport", "example.com", NF, ""),
    ("transport", "sender@other.net", NF, ""),
    ("transport", "x@bücher.example", OK, "mrod-smtps:[mx2.example.net]:465"),
    ("transport", "x@XN--BCHER-KVA.example", OK, "mrod-smtps:[mx2.example.net]:465"),
    ("transport", "x@listed.example", OK, "relay:[2001:db8::25]:2525"),
    ("transport", "x@own.example", OK, "relay:[10.0.0.7]:2526"),
    ("transport", "x@mx.example", OK, "relay:mx.example"),
    ("transport", "x@Deep.MXPlain.example", OK, "relay:deep.mxplain.example"),
    ("transport", '"john doe"@listed.example', OK, "relay:[2001:db8::25]:2525"),
    # disabled domains keep their route so mail already queued still reaches the primary
    ("transport", "x@off.example.org", OK, "relay:[mx3.example.net]:25"),
    ("transport", "a@b@only.example.org", OK, "relay:[mx3.example.net]:25"),
    # relay_recipients: casefolded keys; accept_all; listed with +ext and catch-all
    ("relay_recipients", "anyone@example.com", OK, "accept_all"),
    ("relay_recipients", "anyone@deep.sub.example.com", OK, "accept_all"),
    ("relay_recipients", "joe@xn--bcher-kva.example", OK, "joe@xn--bcher-kva.example"),
    ("relay_recipients", "joe+news@bücher.example", OK, "joe@xn--bcher-kva.example"),
    ("relay_recipients", "jim@xn--bcher-kva.example", NF, ""),
    ("relay_recipients", "sales+q3+x@listed.example", OK, "sales@listed.example"),
    ("relay_recipients", "+sales@listed.example", NF, ""),      # never an empty local part
    ("relay_recipients", '"john doe"@listed.example', OK, "john doe@listed.example"),
    ("relay_recipients", "john doe+x@listed.example", OK, "john doe@listed.example"),
    ("relay_recipients", "postmaster@listed.example", OK, "postmaster@listed.example"),
    # postmaster of every relayed domain, listed or not (RFC 5321 §4.5.1); not of other domains
    ("relay_recipients", "postmaster@xn--bcher-kva.example", OK, "postmaster@xn--bcher-kva.example"),
    ("relay_recipients", '"postmaster"@xn--bcher-kva.example', OK, "postmaster@xn--bcher-kva.example"),
    ("relay_recipients", "postmaster+x@xn--bcher-kva.example", NF, ""),
    ("relay_recipients", "postmaster@nowhere.example", NF, ""),
    ("relay_recipients", "postmaster@off.example.org", NF, ""),
    ("relay_recipients", "whoever@catchall.example", OK, "@catchall.example"),
    ("relay_recipients", "x@off.example.org", NF, ""),
    ("relay_recipients", "x@nowhere.example", NF, ""),
    ("relay_recipients", "no-at-sign", NF, ""),
    ("relay_recipients", "x@verify.example", OK, "verify"),
    # tls_policy: the verbatim nexthop
    ("tls_policy", "[mx1.example.net]:25", OK, "encrypt"),
    ("tls_policy", "[MX1.example.net]:25", OK, "encrypt"),
    ("tls_policy", "[mx1.example.net]", OK, "encrypt"),          # port 25 implied
    ("tls_policy", "[mx1.example.net]:26", NF, ""),
    ("tls_policy", "[mx2.example.net]:465", OK, "encrypt"),      # smtps is at least encrypt
    ("tls_policy", "[2001:db8::25]:2525", OK, "verify"),
    ("tls_policy", "[ipv6:2001:DB8::25]:2525", OK, "verify"),
    ("tls_policy", "[10.0.0.7]:2526", OK, "secure"),
    ("tls_policy", "[mx3.example.net]:25", NF, ""),              # may -> NOTFOUND
    ("tls_policy", "mx.example", OK, "verify"),
    ("tls_policy", ".example", NF, ""),
    ("tls_policy", "[broken", NF, ""),
    ("tls_policy", "[mx1.example.net]x", NF, ""),
    ("tls_policy", "[mx1.example.net]:abc", NF, ""),
]


@pytest.mark.parametrize("map_name,key,status,value", CASES)
async def test_answers(store: RouteStore, map_name: str, key: str, status: str, value: str) -> None:
    result = routing.answer(store, map_name, key)
    assert (result.status, result.value) == (status, value), result.why
    assert result.why  # every answer explains itself
    if status == OK:
        assert result.value, "OK must carry a value"


async def test_unknown_map_is_temp_not_notfound(store: RouteStore) -> None:
    result = routing.answer(store, "relay_domain", "example.com")
    assert result.status == routing.TEMP


async def test_recipient_delimiters_are_configurable(store: RouteStore) -> None:
    options = routing.Options(recipient_delimiter="-+")
    assert routing.answer(store, "relay_recipients", "sales-x@listed.example", options).value == "sales@listed.example"
    # never split the reserved names at '-'
    assert routing.answer(store, "relay_recipients", "mailer-daemon@bücher.example", options).status == NF
    assert routing.strip_extension("mailer-daemon", "-") == "mailer-daemon"
    assert routing.strip_extension("double-bounce", "-") == "double-bounce"
    assert routing.strip_extension("a-b+c", "+-") == "a"


async def test_transport_service_names_are_configurable(store: RouteStore) -> None:
    options = routing.Options(relay_transport="backup", smtps_transport="tls465")
    assert routing.answer(store, "transport", "a@example.com", options).value == "backup:[mx1.example.net]:25"
    assert routing.answer(store, "transport", "a@bücher.example", options).value == "tls465:[mx2.example.net]:465"


async def test_told_lists_what_postfix_asks(store: RouteStore) -> None:
    told = routing.told(store, "bücher.example", "Joe+x")
    assert [(m, k) for m, k, _ in told] == [
        ("relay_domains", "bücher.example"),
        ("transport", "Joe+x@bücher.example"),
        ("relay_recipients", "joe+x@bücher.example"),
        ("tls_policy", "[mx2.example.net]:465"),
    ]
    assert [a.wire() for _, _, a in told] == [
        "OK xn--bcher-kva.example", "OK mrod-smtps:[mx2.example.net]:465",
        "OK joe@xn--bcher-kva.example", "OK encrypt",
    ]


async def test_postmaster_can_be_turned_off(store: RouteStore) -> None:
    off = routing.Options(accept_postmaster=False)
    assert routing.answer(store, "relay_recipients", "postmaster@bücher.example", off).status == NF
    # An explicitly listed postmaster stays listed.
    assert routing.answer(store, "relay_recipients", "postmaster@listed.example", off).status == OK
    # "What Postfix is told" asks postmaster by default, and says why it is accepted.
    told = {m: a for m, _, a in routing.told(store, "xn--bcher-kva.example")}
    assert told["relay_recipients"].status == OK and "RFC 5321" in told["relay_recipients"].why
    told_off = {m: a for m, _, a in routing.told(store, "xn--bcher-kva.example", options=off)}
    assert told_off["relay_recipients"].status == NF


def test_accept_postmaster_comes_from_the_config() -> None:
    from mrod.infra import config as configmod
    assert routing.Options.from_config(configmod.from_dict({})).accept_postmaster is True
    cfg = configmod.from_dict({"lookupd": {"accept_postmaster": False}})
    assert routing.Options.from_config(cfg).accept_postmaster is False


@pytest.mark.parametrize("local, delimiters, expected", [
    ("joe", "+", ["joe@d.example", "@d.example"]),
    ("joe+ext", "+", ["joe+ext@d.example", "joe@d.example", "@d.example"]),
    ("joe-a+b", "+-", ["joe-a+b@d.example", "joe@d.example", "@d.example"]),
    ("double-bounce", "-", ["double-bounce@d.example", "@d.example"]),   # never split
    ("+x", "+", ["+x@d.example", "@d.example"]),
])
def test_recipient_candidates(local: str, delimiters: str, expected: list[str]) -> None:
    # One builder for relay_recipients and the policy's listed check: they must agree.
    assert routing.recipient_candidates(local, "d.example", delimiters) == expected
