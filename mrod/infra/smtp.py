"""A small asyncio SMTP client: just what probes of primaries and recipient callouts need.

Not a mail sender: connect (plain or implicit TLS), read replies, send commands, STARTTLS.
``Dialogue`` is the one opening (banner, EHLO, STARTTLS) that the panel's connection test, the
health probe and the recipient callout share; ``converse`` runs it within a timeout and turns
network trouble into a one-line ``fault`` instead of an exception.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from mrod.infra import oserrors

T = TypeVar("T")

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
            try:
                raw = await self.reader.readline()
            except ValueError:      # a line beyond the stream's limit: no SMTP server sends that
                raise SmtpError(f"SMTP reply line longer than {MAX_LINE * 2} bytes") from None
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

    def peer_cert(self) -> bytes | None:
        """The server's certificate as it sent it (DER; given even when it was not verified)."""
        tls = self.writer.get_extra_info("ssl_object")
        return tls.getpeercert(binary_form=True) if tls is not None else None

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


# -- the dialogue every probe and callout opens with ------------------------------------------------


class Dialogue:
    """Connect, read the banner, EHLO and STARTTLS: the one opening shared by the panel's test
    (mrod.operations.relaytest), the health probe (mrod.operations.health) and the recipient
    callout (mrod.answers.callout); each gives its own verdict on what it found.

    The server is **up** when it takes mail as Postfix would send it to this relay: the banner
    is 220, EHLO is 250, and the relay's TLS requirement is met — for ``encrypt``, ``verify`` and
    ``secure`` STARTTLS is offered, accepted and completed by a handshake at that level (for
    ``smtps`` the implicit TLS handshake, at that level too). With ``may`` TLS is optional, as in
    Postfix: STARTTLS is tried only when the caller asks (``try_starttls``), and a refusal or a
    failed handshake is noted (``tls_ok`` False) without making the server down. The fields are
    filled in as far as the dialogue got, so a failure midway still shows what was seen.
    """

    def __init__(self, host: str, port: int, *, protocol: str = "smtp", tls: str = "may",
                 helo: str = "localhost", try_starttls: bool = True) -> None:
        self.host, self.port, self.tls, self.helo = host, port, tls, helo
        self.implicit = protocol == "smtps"
        self.try_starttls = try_starttls or tls != "may"
        self.steps: list[str] = []
        self.banner: Reply | None = None
        self.latency_ms: float | None = None    # connect + banner + EHLO: until ready for MAIL FROM
        self.starttls: bool | None = None       # offered after EHLO (None: implicit TLS, or not reached)
        self.tls_ok: bool | None = None         # the TLS handshake worked (None: not tried)
        self.fault: str | None = None           # why the server is not up, or the dialogue broke off
        self.peer_cert: bytes | None = None     # the server's certificate (DER), once a TLS handshake is done
        self.cert_error: str | None = None      # why the certificate failed verification (tls verify/secure)
        self._client: SmtpClient | None = None

    @property
    def up(self) -> bool:
        return self.latency_ms is not None and self.fault is None

    async def open(self) -> SmtpClient | None:
        """Run the opening: the client, ready for MAIL FROM, or None when it cannot go on.
        Network and protocol errors propagate (``converse`` turns them into ``fault``)."""
        started = time.perf_counter()
        self.steps.append(f"connecting to {self.host} port {self.port}"
                          + (" with implicit TLS" if self.implicit else ""))
        client = self._client = await SmtpClient.connect(self.host, self.port, implicit_tls=self.implicit,
                                                         tls=self.tls)
        self.banner = await client.reply()
        self.steps.append(f"banner: {self.banner}")
        if self.banner.code != 220:
            return self._down(f"the server greets with {self.banner.code}, not 220 (it refuses mail)")
        ehlo = await client.ehlo(self.helo)
        self.steps.append(f"EHLO {self.helo}: {ehlo.code}")
        if ehlo.code != 250:
            return self._down(f"the server answers EHLO with {str(ehlo)[:200]}")
        self.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if self.implicit:
            self.tls_ok = True
            self.peer_cert = client.peer_cert()
            return client
        self.starttls = "STARTTLS" in client.extensions
        self.steps.append("STARTTLS offered" if self.starttls else "STARTTLS not offered")
        required = self.tls != "may"
        if not self.starttls and required:
            return self._down(f"the relay requires TLS ({self.tls}) but the server offers no STARTTLS")
        if not self.starttls or not self.try_starttls:
            return client
        try:
            reply = await client.starttls(self.tls)
        except (ssl.SSLError, ConnectionError) as exc:
            if isinstance(exc, ssl.SSLCertVerificationError):
                self.cert_error = exc.verify_message or str(exc)
            why = self.why(exc) if isinstance(exc, ssl.SSLError) else f"TLS handshake failed: {self.why(exc)}"
            self.tls_ok = False
            self.steps.append(why)
            # Nothing is left to talk to; with 'may' Postfix would retry in plain text (still up).
            return self._down(why) if required else None
        if reply.code != 220:
            self.tls_ok = False
            self.steps.append(f"STARTTLS refused: {reply}")
            return self._down(f"STARTTLS is offered but refused ({reply})") if required else client
        self.tls_ok = True
        self.peer_cert = client.peer_cert()
        self.steps.append(f"STARTTLS: handshake done (TLS {self.tls})")
        if (await client.ehlo(self.helo)).code != 250:    # RFC 3207: after TLS, EHLO again
            return self._down("the server refuses EHLO after STARTTLS")
        return client

    def why(self, exc: BaseException) -> str:
        """An exception of the dialogue as one line for people."""
        if isinstance(exc, ssl.SSLError):
            return f"TLS handshake failed: {exc.reason or exc}"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused: nothing listens on {self.host} port {self.port}"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve {self.host}: {exc.strerror or exc}"
        if isinstance(exc, OSError):      # in words, never "[Errno 113] …" (read by operators)
            return oserrors.describe(exc, f"{self.host} port {self.port}")
        return str(exc) or type(exc).__name__

    def _down(self, why: str) -> SmtpClient | None:
        """Not up, for ``why``: there is no client to go on with."""
        self.fault = why
        return None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


async def converse(dialogue: Dialogue, timeout: float,
                   then: Callable[[SmtpClient], Awaitable[T]] | None = None) -> T | None:
    """Open ``dialogue`` and, when it leaves a client ready, run ``then`` on it — all within
    ``timeout`` seconds. Never raises for network or protocol trouble: the reason is put in
    ``dialogue.fault`` (one line for people) and the result is None."""
    try:
        async with asyncio.timeout(timeout):
            try:
                client = await dialogue.open()
                return await then(client) if client is not None and then is not None else None
            finally:
                await dialogue.close()
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
    except (OSError, SmtpError, UnicodeError) as exc:
        if isinstance(exc, ssl.SSLCertVerificationError):       # implicit TLS (smtps), at connect
            dialogue.cert_error = exc.verify_message or str(exc)
        why = dialogue.why(exc)
    dialogue.fault = why
    dialogue.steps.append(f"failed: {why}")
    return None

