"""Recipient verification by SMTP callout: does the primary accept RCPT TO:<address>?

True when it answers 2xx, False on a permanent refusal of the recipient (5xx), None when
the answer is inconclusive (4xx, timeouts, connection failures, TLS required but missing):
the policy then treats the primary as unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from mrod.answers.policy import Callout
from mrod.infra.smtp import SmtpClient, SmtpError

log = logging.getLogger("mrod.callout")


async def verify(callout: Callout, *, helo: str, sender: str = "", timeout: float = 10.0) -> bool | None:
    try:
        return await asyncio.wait_for(_dialogue(callout, helo, sender), timeout)
    except (OSError, SmtpError, ssl.SSLError, asyncio.TimeoutError, UnicodeError) as exc:
        log.info("callout to %s:%d for %s inconclusive: %s", callout.host, callout.port, callout.address,
                 exc or type(exc).__name__)
        return None


_ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")


def smtp_path(address: str) -> str:
    """The address as an SMTP path: a local part with spaces or specials is quoted."""
    local, _, domain = address.rpartition("@")
    if local and all(c in _ATEXT or ord(c) > 127 for c in local) and ".." not in local \
            and not local.startswith(".") and not local.endswith("."):
        return address
    quoted = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"@{domain}'


async def _dialogue(callout: Callout, helo: str, sender: str) -> bool | None:
    implicit = callout.protocol == "smtps"
    client = await SmtpClient.connect(callout.host, callout.port, implicit_tls=implicit, tls=callout.tls)
    try:
        if (await client.reply()).code != 220:
            return None
        if (await client.ehlo(helo)).code != 250:
            return None
        wants_tls = callout.tls != "may"
        if not implicit and "STARTTLS" in client.extensions:
            if (await client.starttls(callout.tls)).code == 220:
                if (await client.ehlo(helo)).code != 250:
                    return None
            elif wants_tls:
                return None
        elif not implicit and wants_tls:
            return None   # TLS required, not offered: Postfix would not deliver there either
        if (await client.command(f"MAIL FROM:<{sender}>")).code != 250:
            return None
        reply = await client.command(f"RCPT TO:<{smtp_path(callout.address)}>")
        if 200 <= reply.code < 300:
            return True
        if reply.code in (550, 551, 553):
            return False
        return None
    finally:
        await client.close()
