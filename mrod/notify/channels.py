"""Delivering one message through one channel: email (Postfix's sendmail, or SMTP to a configured
host) and webhook (a JSON POST, signed with HMAC-SHA256 when a secret is set). A failure raises
ChannelError with a line for the operator; the dispatcher records it and retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiohttp

from mrod import __version__
from mrod.infra.config import Config
from mrod.infra.config.checks import host_port
from mrod.infra.enums import NotifyChannel

SIGNATURE_HEADER = "X-Mrod-Signature"


class ChannelError(Exception):
    """A delivery failed; the message says why (one line)."""


def configured(cfg: Config) -> dict[str, str]:
    """The channels set up in [notify.*], each with where it sends."""
    found = {}
    mail = cfg.notify.email
    if mail.to or mail.owners:
        via = f"SMTP {mail.smtp}" if mail.smtp else "sendmail"
        to = ", ".join(mail.to) or "no operator address"
        found[NotifyChannel.EMAIL.value] = f"{to}{' and domain owners' if mail.owners else ''} (through {via})"
    if cfg.notify.webhook.url:
        found[NotifyChannel.WEBHOOK.value] = cfg.notify.webhook.url
    return found


def sender(cfg: Config) -> str:
    return cfg.notify.email.sender or f"mrod@{cfg.node.name}"


def email_message(cfg: Config, recipient: str, title: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender(cfg)
    msg["To"] = recipient
    msg["Subject"] = title
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=cfg.node.name)
    msg["Auto-Submitted"] = "auto-generated"     # RFC 3834: no vacation replies to a notice
    msg.set_content(text)
    return msg


async def send_email(cfg: Config, recipient: str, title: str, text: str) -> None:
    msg = email_message(cfg, recipient, title, text)
    if cfg.notify.email.smtp:
        await asyncio.to_thread(_submit, cfg, recipient, msg)
    else:
        await _sendmail(cfg, recipient, msg)


async def _sendmail(cfg: Config, recipient: str, msg: EmailMessage) -> None:
    conf = cfg.postfix.config_dir
    argv = [cfg.notify.email.sendmail, *(["-C", conf] if conf else []), "-i", "-f", sender(cfg), "--", recipient]
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise ChannelError(f"{argv[0]} cannot be run: {exc.strerror}") from None
    try:
        async with asyncio.timeout(cfg.notify.email.timeout):
            _out, err = await proc.communicate(msg.as_bytes())
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ChannelError(f"{argv[0]} did not finish within {cfg.notify.email.timeout:g}s") from None
    if proc.returncode:
        said = " ".join(err.decode("utf-8", "replace").split())[:300] or "no message"
        raise ChannelError(f"{argv[0]} failed (exit {proc.returncode}): {said}")


def _submit(cfg: Config, recipient: str, msg: EmailMessage) -> None:
    host, port = host_port(cfg.notify.email.smtp)
    try:
        with smtplib.SMTP(host, port, local_hostname=cfg.node.name, timeout=cfg.notify.email.timeout) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            smtp.send_message(msg, from_addr=sender(cfg), to_addrs=[recipient])
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise ChannelError(f"SMTP {host}:{port} refused: {exc.smtp_code} {said[:200]}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(f"SMTP {host}:{port} refused the recipient: {exc.recipients}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError(f"SMTP {host}:{port}: {exc or type(exc).__name__}") from None


def signature(secret: bytes, body: bytes) -> str:
    """The X-Mrod-Signature value: HMAC-SHA256 of the exact body, hex, with its algorithm named."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _secret(cfg: Config) -> bytes | None:
    path = cfg.notify.webhook.secret_file
    if not path:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ChannelError(f"webhook secret {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ChannelError(f"webhook secret {path} is not UTF-8 text") from None
    line = lines[0].strip() if lines else ""
    if not line:
        raise ChannelError(f"webhook secret {path} is empty")
    return line.encode()


async def send_webhook(cfg: Config, payload: dict[str, Any]) -> None:
    hook = cfg.notify.webhook
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"mrod/{__version__}"}
    secret = _secret(cfg)
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=hook.timeout)) as session:
            async with session.post(hook.url, data=body, headers=headers, allow_redirects=False) as reply:
                if not 200 <= reply.status < 300:
                    said = " ".join((await reply.text(errors="replace")).split())[:200]
                    raise ChannelError(f"webhook answered HTTP {reply.status}{f': {said}' if said else ''}")
    except TimeoutError:
        raise ChannelError(f"webhook did not answer within {hook.timeout:g}s") from None
    except aiohttp.ClientError as exc:
        raise ChannelError(f"webhook: {exc or type(exc).__name__}") from None


async def deliver(cfg: Config, channel: str, recipient: str, title: str, payload: dict[str, Any]) -> None:
    """One attempt of one stored message."""
    if channel == NotifyChannel.EMAIL:
        await send_email(cfg, recipient, title, str(payload.get("text", "")))
    elif channel == NotifyChannel.WEBHOOK:
        if not cfg.notify.webhook.url:
            raise ChannelError("no webhook is set up any more ([notify.webhook] url)")
        await send_webhook(cfg, payload)
    else:
        raise ChannelError(f"unknown channel {channel!r}")
