"""The merge rules of `mrod postfix-config --postconf` (answers/postconfplan), case by case."""

from __future__ import annotations

from mrod.answers import postconfplan as pm

SM = "socketmap:inet:127.0.0.1:10101"
WANTED = {"relay_domains": f"{SM}:relay_domains", "transport_maps": f"{SM}:transport",
          "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
          "smtpd_recipient_restrictions": "check_policy_service inet:127.0.0.1:10102",
          "fast_flush_domains": "$relay_domains", "recipient_delimiter": "+",
          "maximal_queue_lifetime": "5d"}


def _by_name(changes: list[pm.Change]) -> dict[str, str]:
    return {c.parameter: c.new for c in changes}


def test_an_older_mrod_table_is_replaced_not_doubled() -> None:
    explicit = {"transport_maps": "hash:/etc/postfix/transport socketmap:inet:127.0.0.1:9999:transport"}
    assert _by_name(pm.plan(WANTED, explicit, {}))["transport_maps"] == f"hash:/etc/postfix/transport, {SM}:transport"


def test_relay_restrictions_without_an_unauth_check_get_one() -> None:
    changes = _by_name(pm.plan(WANTED, {"smtpd_relay_restrictions": "permit_mynetworks"}, {}))
    assert changes["smtpd_relay_restrictions"] == "permit_mynetworks, reject_unauth_destination"
    assert "smtpd_relay_restrictions" not in _by_name(
        pm.plan(WANTED, {"smtpd_relay_restrictions": "permit_mynetworks, defer_unauth_destination"}, {}))


def test_policy_check_goes_before_a_final_permit_once() -> None:
    explicit = {"smtpd_recipient_restrictions": "reject_rbl_client zen.spamhaus.org, permit"}
    new = _by_name(pm.plan(WANTED, explicit, {}))["smtpd_recipient_restrictions"]
    assert pm.split_list(new)[-3:] == ["check_policy_service", "inet:127.0.0.1:10102", "permit"]
    assert "smtpd_recipient_restrictions" not in _by_name(pm.plan(WANTED, {"smtpd_recipient_restrictions": new}, {}))


def test_settings_that_already_do_are_left_alone() -> None:
    effective = {"fast_flush_domains": "${relay_domains}, example.net", "recipient_delimiter": "+-",
                 "maximal_queue_lifetime": "7d"}
    changes = _by_name(pm.plan(WANTED, {}, effective))
    assert not {"fast_flush_domains", "recipient_delimiter", "maximal_queue_lifetime"} & set(changes)
    assert pm.warnings(WANTED, effective) == ["recipient_delimiter is '+-' but mrod's [lookupd] "
                                              "recipient_delimiter is '+': make them equal"]
    assert _by_name(pm.plan(WANTED, {}, {"maximal_queue_lifetime": "72h"}))["maximal_queue_lifetime"] == "5d"


def test_lists_keep_braced_groups_whole() -> None:
    assert pm.split_list("a, { b c }  d,e") == ["a", "{ b c }", "d", "e"]


def test_the_longest_domain_lifetime_is_wanted_and_warned() -> None:
    assert pm.with_retention(WANTED, ("long.example", 14 * 86400))["maximal_queue_lifetime"] == "2w"
    assert pm.with_retention(WANTED, ("short.example", 86400))["maximal_queue_lifetime"] == "5d"
    assert pm.with_retention(WANTED, None) == WANTED
    assert _by_name(pm.plan(pm.with_retention(WANTED, ("long.example", 10 * 86400)), {},
                            {"maximal_queue_lifetime": "5d"}))["maximal_queue_lifetime"] == "10d"
    [warning] = pm.retention_warnings({"maximal_queue_lifetime": "5d"}, ("long.example", 10 * 86400))
    assert "long.example keeps mail for 10d" in warning
    assert pm.retention_warnings({"maximal_queue_lifetime": "5d"}, ("short.example", 86400)) == []
