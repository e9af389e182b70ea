from __future__ import annotations

import pytest

from mrod.infra import names
from mrod.infra.errors import InvalidInput


@pytest.mark.parametrize(
    "text,stored",
    [
        ("Example.COM", "example.com"),
        (" example.com. ", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.Example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("123.example", "123.example"),
    ],
)
def test_domain_normalises(text: str, stored: str) -> None:
    assert names.domain(text) == stored


@pytest.mark.parametrize(
    "text,why",
    [
        ("", "empty"),
        ("com", "at least 2 labels"),
        ("bad_domain.com", "letters, digits"),
        ("-a.example", "letters, digits"),
        ("a-.example", "letters, digits"),
        ("a..example", "empty label"),
        ("a b.example", "white space"),
        ("192.0.2.1", "IP address"),
        ("x" * 64 + ".example", "longer than 63"),
        (("a" * 60 + ".") * 5 + "example", "longer than 253"),
        ("xn--zz.example", "internationalised"),
        ("<script>.example", "letters, digits"),
        (None, "text"),
    ],
)
def test_domain_refuses(text: object, why: str) -> None:
    with pytest.raises(InvalidInput) as info:
        names.domain(text)
    assert why in info.value.message


@pytest.mark.parametrize(
    "text,host",
    [("MX1.Example.net", "mx1.example.net"), ("mailhub", "mailhub"), ("192.0.2.10", "192.0.2.10"),
     ("[2001:DB8::1]", "2001:db8::1"), ("ipv6:2001:db8::1", "2001:db8::1")],
)
def test_hostname(text: str, host: str) -> None:
    assert names.hostname(text) == host


@pytest.mark.parametrize("text", ["", "a b", "host_1.example", "999.1.1.1"])
def test_hostname_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        names.hostname(text)


@pytest.mark.parametrize("value,port", [("25", 25), (465, 465), (" 2525 ", 2525)])
def test_port(value: object, port: int) -> None:
    assert names.port(value) == port


@pytest.mark.parametrize("value", ["0", "65536", "-1", "x", "", True, 1.5, None])
def test_port_refuses(value: object) -> None:
    with pytest.raises(InvalidInput):
        names.port(value)


@pytest.mark.parametrize("value", ["", "42", "a b", "x" * 65, "<b>"])
def test_relay_name_refuses(value: str) -> None:
    with pytest.raises(InvalidInput):
        names.relay_name(value)


@pytest.mark.parametrize(
    "text,stored",
    [("Joe@Example.COM", "joe@example.com"), ("@example.com", "@example.com"),
     ("Jöe@bücher.example", "jöe@xn--bcher-kva.example"),
     ('"John Doe"@example.com', "john doe@example.com"), ('"a\\"b"@example.com', 'a"b@example.com')],
)
def test_address(text: str, stored: str) -> None:
    assert names.address(text) == stored


@pytest.mark.parametrize("text", ["joe", "joe@", "a b@example.com", '""@example.com', '"a\tb"@example.com', "joe@bad_domain.com", "x" * 65 + "@example.com"])
def test_address_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        names.address(text)


@pytest.mark.parametrize(
    "key,result",
    [("Example.COM", "example.com"), ("[192.0.2.1]", None), ("bücher.example", "xn--bcher-kva.example"),
     ("", None), ("example.com.", "example.com"), ("\udcff.example", None)],
)
def test_lookup_domain(key: str, result: str | None) -> None:
    assert names.lookup_domain(key) == result


def test_parent_domains_stop_before_the_tld() -> None:
    assert names.parent_domains("a.b.example.com") == ["b.example.com", "example.com"]
    assert names.parent_domains("example.com") == []


def test_to_unicode() -> None:
    assert names.to_unicode("xn--bcher-kva.example") == "bücher.example"
    assert names.to_unicode("example.com") == "example.com"


@pytest.mark.parametrize("name, found, expected", [
    ("example.com", {"example.com": False}, "example.com"),               # itself, with or without subdomains
    ("a.b.example.com", {"example.com": True}, "example.com"),
    ("a.b.example.com", {"example.com": False}, None),                    # a parent must include subdomains
    ("a.b.example.com", {"b.example.com": False, "example.com": True}, "example.com"),
    ("a.b.example.com", {"b.example.com": True, "example.com": True}, "b.example.com"),   # the closest
    ("x.example.com", {}, None),
])
def test_deciding_domain(name: str, found: dict[str, bool], expected: str | None) -> None:
    # The one matcher of routing.match and recipients.owning_domain.
    assert names.deciding_domain(name, found, bool) == expected
