"""A small asyncio SMTP client: just what probes of primaries and recipient callouts need.

Not a mail sender: connect (plain or implicit TLS), read replies, send commands, STARTTLS.
Every step is bounded by the caller's timeout; errors surface as SmtpError or OSError.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

MAX_REPLY_LINES = 100
MAX_LINE = 4096


class SmtpError(Exception):
    """The server broke the protocol (or closed the connection)."""


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


def tls_context(level: str) -> ssl.SSLContext:
    """'verify'/'secure' check the certificate and name; otherwise encrypt without checking,
    as Postfix's 'may'/'encrypt' do."""
    ctx = ssl.create_default_context()
    if level not in ("verify", "secure"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SmtpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.extensions: dict[str, str] = {}

    @classmethod
    async def connect(cls, host: str, port: int, *, implicit_tls: bool = False, tls: str = "may") -> "SmtpClient":
        context = tls_context(tls) if implicit_tls else None
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None, limit=MAX_LINE * 2)
        return cls(reader, writer, host)

    async def reply(self) -> Reply:
        lines: list[str] = []
        code = 0
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise SmtpError("connection closed by the server")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise SmtpError(f"not an SMTP reply: {line[:80]!r}")
            code = int(line[:3])
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(code, tuple(lines))
            if len(lines) >= MAX_REPLY_LINES:
                raise SmtpError("SMTP reply too long")

    async def command(self, text: str) -> Reply:
        if "\r" in text or "\n" in text:
            raise ValueError("SMTP commands are one line")
        self.writer.write(text.encode("utf-8") + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def ehlo(self, name: str) -> Reply:
        reply = await self.command(f"EHLO {name}")
        if reply.code == 250:
            self.extensions = {}
            for line in reply.lines[1:]:
                keyword, _, params = line.partition(" ")
                self.extensions[keyword.upper()] = params
        return reply

    async def starttls(self, tls: str) -> Reply:
        reply = await self.command("STARTTLS")
        if reply.code == 220:
            await self.writer.start_tls(tls_context(tls), server_hostname=self.host)
        return reply

    async def close(self) -> None:
        try:
            if not self.writer.is_closing():
                self.writer.write(b"QUIT\r\n")
                await asyncio.wait_for(self.writer.drain(), 1)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass
