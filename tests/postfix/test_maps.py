"""Postfix's own client asks lookupd: ``postmap -q`` through the socketmap and through each
tcp_table endpoint, for every map and the keys that trip up lookup daemons.

postmap sends the key verbatim (no case folding; UTF-8 as is; spaces kept — %-encoded on tcp),
exits 0 with the value when found, 1 with nothing when not found, and 1 with ``fatal:`` on
stderr for a lookup error. One lookupd and one (unstarted: postmap needs only its main.cf)
Postfix configuration serve the whole module: nothing here writes.
"""

from __future__ import annotations

import pytest

from tests.data import seed_file_sync

pytestmark = pytest.mark.postfix

RELAY = "relay:[mx1.example.net]:25"

# (map, key, value) — value None: not found.
CASES = [
    # relay_domains: Postfix sends the full recipient domain, lowercased; mrod matches parents.
    ("relay_domains", "example.com", "example.com"),
    ("relay_domains", "sub.example.com", "example.com"),
    ("relay_domains", "deep.sub.example.com", "example.com"),
    ("relay_domains", "Sub.Example.COM", "example.com"),
    ("relay_domains", "nosub.example", "nosub.example"),
    ("relay_domains", "sub.nosub.example", None),          # no include_subdomains
    ("relay_domains", "bücher.example", "xn--bcher-kva.example"),   # U-label key, A-label storage
    ("relay_domains", "BÜCHER.example", "xn--bcher-kva.example"),
    ("relay_domains", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("relay_domains", "disabled.example", None),
    ("relay_domains", "other.example", None),
    ("relay_domains", "example.com.evil.test", None),
    ("relay_domains", "[192.0.2.1]", None),                 # address literals arrive too
    ("relay_domains", "*", None),
    # transport: the full address in the envelope's case, and the wildcard '*'.
    ("transport", "User+tag@Sub.Example.COM", RELAY),
    ("transport", "joe@example.com", RELAY),
    ("transport", '"john doe"@example.com', RELAY),
    ("transport", "joe@bücher.example", RELAY),
    ("transport", "joe@xn--bcher-kva.example", RELAY),
    ("transport", "joe@sub.nosub.example", None),
    # Disabled: no new mail is accepted, but mail already queued still has its route.
    ("transport", "joe@disabled.example", RELAY),
    ("transport", "joe@secure.example", "mrod-smtps:[smtps.example.net]:465"),
    ("transport", "joe@override.example", "relay:[198.51.100.7]:2526"),
    ("transport", "joe@other.example", None),
    ("transport", "example.com", None),                     # not an address
    ("transport", "*", None),
    # relay_recipients: casefolded address; +ext, quoted local parts and @domain are mrod's job.
    ("relay_recipients", "user+tag@sub.example.com", "accept_all"),
    ("relay_recipients", "User+Tag@Sub.Example.COM", "accept_all"),
    ("relay_recipients", "joe@listed.example", "joe@listed.example"),
    ("relay_recipients", "joe+ext@listed.example", "joe@listed.example"),
    ("relay_recipients", "JOE+Ext@Listed.Example", "joe@listed.example"),
    ("relay_recipients", '"john doe"@listed.example', "john doe@listed.example"),
    ("relay_recipients", '"john doe+x"@listed.example', "john doe@listed.example"),
    ("relay_recipients", "nobody@listed.example", None),
    ("relay_recipients", "anyone@catchall.example", "@catchall.example"),
    ("relay_recipients", "anyone+x@catchall.example", "@catchall.example"),
    ("relay_recipients", "jörg@bücher.example", "accept_all"),
    ("relay_recipients", "joe@disabled.example", None),
    ("relay_recipients", "joe@other.example", None),
    ("relay_recipients", "*", None),
    # tls_policy: the nexthop of mrod's own transport answer, verbatim.
    ("tls_policy", "[mx1.example.net]:25", None),            # tls 'may' needs no policy
    ("tls_policy", "[mx-secure.example.net]:25", "encrypt"),
    ("tls_policy", "[smtps.example.net]:465", "encrypt"),    # implicit TLS is at least encrypt
    ("tls_policy", "[192.0.2.10]:2525", "verify"),
    ("tls_policy", "[198.51.100.7]:2526", "secure"),          # a domain's own host override
    ("tls_policy", "[mx-secure.example.net]:2525", None),    # same host, other port
    ("tls_policy", "[unknown.example.net]:25", None),
    ("tls_policy", "*", None),
]

TABLES = ["socketmap", "tcp"]


@pytest.fixture(scope="module")
def maps(module_mrod_factory, module_postfix_factory):
    mrod = module_mrod_factory()
    seed_file_sync(
        mrod.db_path,
        relays=[
            dict(name="p1", host="mx1.example.net"),
            dict(name="secure", host="mx-secure.example.net", tls="encrypt"),
            dict(name="implicit", host="smtps.example.net", port=465, protocol="smtps"),
            dict(name="checked", host="192.0.2.10", port=2525, tls="verify"),
        ],
        domains=[
            dict(name="example.com", relay="p1", include_subdomains=True),
            dict(name="nosub.example", relay="p1"),
            dict(name="bücher.example", relay="p1"),
            dict(name="disabled.example", relay="p1", enabled=False),
            dict(name="listed.example", relay="secure", recipients="listed"),
            dict(name="catchall.example", relay="checked", recipients="listed"),
            dict(name="secure.example", relay="implicit"),
            dict(name="override.example", host="198.51.100.7", port=2526, tls="secure"),
        ],
        recipients=["joe@listed.example", '"john doe"@listed.example', "@catchall.example"],
    )
    postfix = module_postfix_factory(mrod.config, start=False)
    return mrod, postfix


def table(mrod, kind: str, map_name: str) -> str:
    return mrod.socketmap_table(map_name) if kind == "socketmap" else mrod.tcp_table(map_name)


@pytest.mark.parametrize("kind", TABLES)
@pytest.mark.parametrize(("map_name", "key", "value"), CASES)
def test_postmap_q(maps, kind: str, map_name: str, key: str, value: str | None) -> None:
    mrod, postfix = maps
    rc, out, err = postfix.postmap_q(key, table(mrod, kind, map_name))
    assert err == ""    # found or not found, never a lookup error
    if value is None:
        assert (rc, out) == (1, "")
    else:
        assert (rc, out) == (0, value)


@pytest.mark.parametrize("kind", TABLES)
@pytest.mark.parametrize("map_name", sorted({c[0] for c in CASES}))
def test_postmap_many_keys_on_one_connection(maps, kind: str, map_name: str) -> None:
    """``postmap -q -`` asks every key over one connection: the server must stay in step."""
    mrod, postfix = maps
    cases = [(k, v) for m, k, v in CASES if m == map_name] * 3
    rc, found, err = postfix.postmap_many([k for k, _ in cases], table(mrod, kind, map_name))
    assert err == ""
    assert found == {k: v for k, v in cases if v is not None}
    assert rc == 0


def test_generated_main_cf_names_the_socketmap(maps) -> None:
    """The instance runs mrod's own main.cf lines: every map parameter points at lookupd."""
    mrod, postfix = maps
    for parameter, map_name in (("relay_domains", "relay_domains"), ("transport_maps", "transport"),
                                ("relay_recipient_maps", "relay_recipients"),
                                ("smtp_tls_policy_maps", "tls_policy")):
        assert postfix.postconf(parameter) == mrod.socketmap_table(map_name)
    rc, out, err = postfix.postmap_q("joe@example.com", postfix.postconf("transport_maps"))
    assert (rc, out, err) == (0, RELAY, "")
