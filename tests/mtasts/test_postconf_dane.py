"""postfix-config and DANE: `smtp_dns_support_level = dnssec` is planned where Postfix lacks it
(with the warning about a validating resolver), left alone where it is set, and not emitted
with [mta_sts] dane = false."""

from __future__ import annotations

from mrod.answers import postconfplan, postfixlines
from mrod.infra import config as configmod


def test_dnssec_is_planned_once_and_warned_about_while_it_is_set() -> None:
    wanted = postconfplan.parse_main_cf(postfixlines.main_cf(configmod.from_dict({})))
    assert wanted["smtp_dns_support_level"] == "dnssec"
    changes = postconfplan.plan(wanted, {}, {"smtp_dns_support_level": ""})
    assert [c.new for c in changes if c.parameter == "smtp_dns_support_level"] == ["dnssec"]
    assert any("trust-ad" in w for w in postconfplan.warnings(wanted, {"smtp_dns_support_level": ""}))
    done = {"smtp_dns_support_level": "dnssec"}
    assert not [c for c in postconfplan.plan(wanted, done, done) if c.parameter == "smtp_dns_support_level"]
    assert not [w for w in postconfplan.warnings(wanted, done) if "dnssec" in w]


def test_no_dnssec_without_dane() -> None:
    text = postfixlines.main_cf(configmod.from_dict({"mta_sts": {"dane": False}}))
    assert "smtp_dns_support_level" not in text
