"""A test SMTP client (stdlib smtplib) that reports what the server said, code and text.

    reply = send(port, ["joe@example.com"], message)     # SmtpReply(250, '2.0.0 Ok: queued as …')
    reply.queue_id                                       # Postfix's queue id, from that text
    rcpt_reply(port, "joe@example.com")                  # the reply to RCPT TO only; then RSET, QUIT

``send`` raises SmtpRejected(stage, code, text, recipient) for the first command refused.
The client says EHLO client.test from 127.0.0.1; the default envelope sender is
sender@client.test. ``smtputf8=True`` sends MAIL FROM with SMTPUTF8 (U-label addresses);
an 8-bit message goes with BODY=8BITMIME.
"""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass

CLIENT_HELO = "client.test"
CLIENT_SENDER = "sender@client.test"


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str

    @property
    def queue_id(self) -> str | None:
        found = re.search(r"queued as (\w+)", self.text)
        return found.group(1) if found else None


class SmtpRejected(Exception):
    """The server refused (or deferred) a command; ``stage`` is MAIL, RCPT or DATA."""

    def __init__(self, stage: str, code: int, text: str, recipient: str | None = None) -> None:
        super().__init__(f"{stage}{' ' + recipient if recipient else ''}: {code} {text}")
        self.stage, self.code, self.text, self.recipient = stage, code, text, recipient


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _connect(port: int, host: str) -> smtplib.SMTP:
    client = smtplib.SMTP(host, port, local_hostname=CLIENT_HELO, timeout=60)
    client.ehlo()
    return client


def _mail(client: smtplib.SMTP, sender: str, smtputf8: bool, eightbit: bool = False) -> None:
    options = (["SMTPUTF8"] if smtputf8 else []) + (["BODY=8BITMIME"] if eightbit else [])
    code, text = client.mail(sender, options)
    if code != 250:
        raise SmtpRejected("MAIL", code, _text(text))


def rcpt_reply(port: int, recipient: str, *, sender: str = CLIENT_SENDER, smtputf8: bool = False,
               host: str = "127.0.0.1") -> SmtpReply:
    """The reply to RCPT TO:<recipient>; the dialogue stops there and nothing is queued."""
    with _connect(port, host) as client:
        _mail(client, sender, smtputf8)
        code, text = client.rcpt(recipient)
        client.rset()
    return SmtpReply(code, _text(text))


def send(port: int, recipients: list[str], message: bytes, *, sender: str = CLIENT_SENDER,
         smtputf8: bool = False, host: str = "127.0.0.1") -> SmtpReply:
    """Send one message; the reply to the end of DATA, or SmtpRejected for the first refusal."""
    with _connect(port, host) as client:
        _mail(client, sender, smtputf8, eightbit=any(b > 127 for b in message))
        for rcpt in recipients:
            code, text = client.rcpt(rcpt)
            if code not in (250, 251):
                client.rset()
                raise SmtpRejected("RCPT", code, _text(text), rcpt)
        try:
            code, text = client.data(message)
        except smtplib.SMTPDataError as exc:
            raise SmtpRejected("DATA", exc.smtp_code, _text(exc.smtp_error)) from None
        if code != 250:
            raise SmtpRejected("DATA", code, _text(text))
    return SmtpReply(code, _text(text))
