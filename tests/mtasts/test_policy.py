"""The MTA-STS parser and the answer it gives Postfix: pure, table-driven."""

from __future__ import annotations

import pytest

from mrod.answers import routing
from mrod.mtasts import policy
from mrod.mtasts.policy import Policy, PolicyError

GOOD = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET\r\nmax_age: 604800\r\n"


def test_a_policy_parses_with_crlf_or_lf_and_lowercases_patterns() -> None:
    expected = Policy("enforce", ("mail.example.com", "*.example.net"), 604800)
    assert policy.parse(GOOD) == expected
    assert policy.parse(GOOD.replace("\r\n", "\n")) == expected


@pytest.mark.parametrize("text, says", [
    ("mode: enforce\nmx: a.example\nmax_age: 1\n", "version"),
    ("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "version"),
    ("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", "mode"),
    ("version: STSv1\nmode: enforce\nmax_age: 1\n", "without any mx"),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: soon\n", "max_age"),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -5\n", "max_age"),
    ("version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n", "mx"),
    ("version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1\n", "mx"),
    ("version: STSv1\nmode enforce\n", "key: value"),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n" + "x: y\n" * 20000, "larger"),
])
def test_bad_policies_say_why(text: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says):
        policy.parse(text)


def test_max_age_is_capped_at_a_year_and_none_needs_no_mx() -> None:
    assert policy.parse("version: STSv1\nmode: none\nmax_age: 9999999999\n") == Policy("none", (), 31557600)


@pytest.mark.parametrize("texts, expected", [
    (["v=STSv1; id=20240101T01"], "20240101T01"),
    (["v=STSv1;id=abc;"], "abc"),
    (["some other record", "v=spf1 -all"], None),
    ([], None),
])
def test_txt_ids(texts: list[str], expected: str | None) -> None:
    assert policy.txt_id(texts) == expected


@pytest.mark.parametrize("texts", [["v=STSv1; id=1", "v=STSv1; id=2"], ["v=STSv1; id=a-b"], ["v=STSv1;"],
                                   ["v=STSv1; id=" + "a" * 33]])
def test_bad_txt_records(texts: list[str]) -> None:
    with pytest.raises(PolicyError):
        policy.txt_id(texts)


@pytest.mark.parametrize("pattern, host, matches", [
    ("*.example.net", "mx1.example.net", True),
    ("*.example.net", "MX1.Example.Net.", True),
    ("*.example.net", "a.b.example.net", False),     # one label only (RFC 8461 §4.1)
    ("*.example.net", "example.net", False),
    ("mail.example.com", "mail.example.com", True),
    ("mail.example.com", "mx.example.com", False),
])
def test_mx_matching(pattern: str, host: str, matches: bool) -> None:
    assert policy.mx_matches(pattern, host) is matches


def test_answers() -> None:
    enforce = policy.parse(GOOD)
    assert policy.answer(enforce, False) == "secure match=mail.example.com:.example.net servername=hostname"
    assert policy.answer(enforce, True) == "dane"           # DANE first (RFC 8461 §2)
    assert policy.answer(Policy("testing", ("a.example",), 1), False) is None
    assert policy.answer(None, False) is None


@pytest.mark.parametrize("published, own, expected", [
    ("dane", "may", "dane"),
    ("dane", "encrypt", "dane-only"),      # never back to opportunistic over a mandatory level
    ("secure match=a.example servername=hostname", "verify", "secure match=a.example servername=hostname"),
])
def test_destination_level(published: str, own: str, expected: str) -> None:
    assert routing.destination_level(published, own) == expected
