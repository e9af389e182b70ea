"""What a real smtpd answers at RCPT TO, from lookupd's live answers (Postfix's smtpd and
trivial-rewrite ask the maps; the test client 127.0.0.1 is not in mynetworks, so only mrod's
relay_domains can let mail in).

One Postfix instance and one lookupd serve the module: every dialogue stops after RCPT (RSET,
QUIT), so nothing is queued and no test changes what another sees.
"""

from __future__ import annotations

import pytest

from tests.data import seed_file_sync

pytestmark = pytest.mark.postfix

ACCEPTED = (250, "2.1.5 Ok")
UNKNOWN_USER = "Recipient address rejected: User unknown in relay recipient table"


@pytest.fixture(scope="module")
def postfix(module_mrod_factory, module_postfix_factory):
    mrod = module_mrod_factory()
    seed_file_sync(
        mrod.db_path,
        relays=[dict(name="p1", host="127.0.0.1", port=2)],   # never delivered to here
        domains=[
            dict(name="example.com", relay="p1", include_subdomains=True),
            dict(name="nosub.example", relay="p1"),
            dict(name="bücher.example", relay="p1"),
            dict(name="disabled.example", relay="p1", enabled=False),
            dict(name="listed.example", relay="p1", recipients="listed"),
            dict(name="catchall.example", relay="p1", recipients="listed"),
        ],
        recipients=["joe@listed.example", '"john doe"@listed.example', "@catchall.example"],
    )
    return module_postfix_factory(mrod.config)


def relay_denied(postfix) -> tuple[int, str]:
    """What smtpd says for a domain that is not relayed, per the generated main.cf:
    reject_unauth_destination answers relay_domains_reject_code (554), defer_... 454."""
    restrictions = postfix.postconf("smtpd_relay_restrictions")
    assert "reject_unauth_destination" in restrictions, restrictions
    return int(postfix.postconf("relay_domains_reject_code")), "5.7.1"


@pytest.mark.parametrize("rcpt", [
    "joe@example.com",
    "User+tag@Sub.Example.COM",            # subdomain (include_subdomains), mixed case, +ext
    '"john doe"@example.com',              # a quoted local part with a space
    "joe@nosub.example",
    "joe@xn--bcher-kva.example",           # A-label, as ASCII mail carries it
])
def test_relay_domain_is_accepted(postfix, rcpt: str) -> None:
    reply = postfix.rcpt_reply(rcpt)
    assert (reply.code, reply.text) == ACCEPTED


def test_u_label_domain_is_accepted_over_smtputf8(postfix) -> None:
    reply = postfix.rcpt_reply("jörg@bücher.example", smtputf8=True)
    assert (reply.code, reply.text) == ACCEPTED


@pytest.mark.parametrize("rcpt", [
    "joe@other.example",
    "joe@sub.nosub.example",               # parent does not include subdomains
    "joe@disabled.example",
    "joe@example.com.evil.test",
    "joe@[192.0.2.1]",                     # an address literal reaches relay_domains as "[192.0.2.1]"
])
def test_domain_not_relayed_is_refused(postfix, rcpt: str) -> None:
    code, status = relay_denied(postfix)
    reply = postfix.rcpt_reply(rcpt)
    assert (reply.code, reply.text) == (code, f"{status} <{rcpt}>: Relay access denied")


@pytest.mark.parametrize("rcpt", [
    "joe@listed.example",
    "joe+ext@listed.example",
    "Joe+Other@Listed.Example",
    '"john doe"@listed.example',
    "anyone@catchall.example",
    "anyone+x@catchall.example",
])
def test_listed_domain_accepts_listed_recipients(postfix, rcpt: str) -> None:
    reply = postfix.rcpt_reply(rcpt)
    assert (reply.code, reply.text) == ACCEPTED


@pytest.mark.parametrize("rcpt", ["nobody@listed.example", "nobody+joe@listed.example", "joe.x@listed.example"])
def test_listed_domain_refuses_unknown_recipient(postfix, rcpt: str) -> None:
    reply = postfix.rcpt_reply(rcpt)
    assert (reply.code, reply.text) == (550, f"5.1.1 <{rcpt}>: {UNKNOWN_USER}")
