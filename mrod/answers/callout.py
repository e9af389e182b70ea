"""Recipient verification by SMTP callout: does the primary accept RCPT TO:<address>?

The opening is the shared SMTP dialogue (mrod.infra.smtp.Dialogue, STARTTLS whenever offered,
as Postfix does), then MAIL FROM and RCPT TO. The verdict: True when the primary answers the
RCPT 2xx, False on a permanent refusal of the recipient (550/551/553), None when it is
inconclusive — the primary not up by the health monitor's measure (refused, timed out, not
SMTP, TLS required but not working), a STARTTLS handshake that failed, a refused MAIL FROM,
any other reply: the policy then treats the primary as unreachable.
"""

from __future__ import annotations

import logging

from mrod.answers.policy import Callout
from mrod.infra.smtp import Dialogue, SmtpClient, converse

log = logging.getLogger("mrod.callout")


async def verify(callout: Callout, *, helo: str, sender: str = "", timeout: float = 10.0) -> bool | None:
    dialogue = Dialogue(callout.host, callout.port, protocol=callout.protocol, tls=callout.tls, helo=helo,
                        try_starttls=True)

    async def transaction(client: SmtpClient) -> bool | None:
        if (await client.command(f"MAIL FROM:<{sender}>")).code != 250:
            return None
        reply = await client.command(f"RCPT TO:<{smtp_path(callout.address)}>")
        if 200 <= reply.code < 300:
            return True
        return False if reply.code in (550, 551, 553) else None

    result = await converse(dialogue, timeout, transaction)
    if result is None:
        log.info("callout to %s:%d for %s inconclusive: %s", callout.host, callout.port, callout.address,
                 dialogue.fault or (dialogue.steps[-1] if dialogue.steps else "no answer"))
    return result


_ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")


def smtp_path(address: str) -> str:
    """The address as an SMTP path: a local part with spaces or specials is quoted."""
    local, _, domain = address.rpartition("@")
    if local and all(c in _ATEXT or ord(c) > 127 for c in local) and ".." not in local \
            and not local.startswith(".") and not local.endswith("."):
        return address
    quoted = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"@{domain}'
