"""An SMTP sink that plays a domain's primary mail server (a pytest plugin).

``SmtpSink`` is an aiosmtpd server on 127.0.0.1 on a port chosen once, when the sink is made,
so it can be stopped (the primary is down: connections are refused) and started again on the
same port (the primary is back). It runs in its own thread with its own event loop — tests
that use it can be plain synchronous functions — and collects every message it accepts:

    def test_x(smtp_sink):            # started
        smtp_sink.stop()              # down
        ...
        smtp_sink.start()             # up again, same port
        [msg] = smtp_sink.wait_for(1, timeout=20)
        msg.mail_from, msg.rcpt_tos, msg.content   # content: bytes exactly as received

Fixtures: ``smtp_sink`` and ``smtp_sink2`` (two independent primaries, e.g. "the relay moved"),
``smtp_sink_factory(start=True)`` for more. All are stopped at teardown.

For TLS: ``tls_context`` is a server context with a fresh self-signed certificate (made by
openssl, CN primary.test), ``smtp_server(**options)`` starts an aiosmtpd primary with the given
Controller options (``tls_context=`` offers STARTTLS, ``ssl_context=`` is implicit TLS) and
returns its port.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from aiosmtpd.controller import Controller

from tests.harness import free_port, require_tool


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes          # the DATA payload as it arrived (CRLF line ends, dots unstuffed)
    peer: str


class _Collector:
    """aiosmtpd handler: accept everything, remember it."""

    def __init__(self, sink: "SmtpSink") -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content if envelope.original_content is not None else envelope.content
        self.sink._add(Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=bytes(content),
            peer=str(session.peer[0]) if session.peer else "",
        ))
        return "250 2.0.0 Ok: stored by test sink"


class SmtpSink:
    def __init__(self, name: str = "sink", host: str = "127.0.0.1", port: int | None = None,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.tls_context = tls_context      # offers STARTTLS with it; may be replaced while stopped
        self.host = host
        self.port = port or free_port(host)
        self.messages: list[Received] = []
        self._lock = threading.Condition()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> "SmtpSink":
        if self._controller is None:
            # A Controller closes its loop when stopped: a fresh one per start.
            controller = Controller(_Collector(self), hostname=self.host, port=self.port,
                                    server_hostname=f"{self.name}.primary.test", ready_timeout=10,
                                    tls_context=self.tls_context)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            controller, self._controller = self._controller, None
            controller.stop()

    def _add(self, message: Received) -> None:
        with self._lock:
            self.messages.append(message)
            self._lock.notify_all()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` messages, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name} on {self.host}:{self.port} received {len(self.messages)} of "
                        f"{count} message(s) within {timeout:g}s")
                self._lock.wait(left)
            return list(self.messages[:count])

    def __repr__(self) -> str:
        state = "up" if self.running else "down"
        return f"<SmtpSink {self.name} {self.host}:{self.port} {state}, {len(self.messages)} message(s)>"


@pytest.fixture
def smtp_sink_factory() -> Iterator[Callable[..., SmtpSink]]:
    made: list[SmtpSink] = []

    def make(name: str = "sink", *, start: bool = True) -> SmtpSink:
        sink = SmtpSink(name)
        made.append(sink)
        return sink.start() if start else sink

    yield make
    for sink in made:
        sink.stop()


@pytest.fixture
def smtp_sink(smtp_sink_factory: Callable[..., SmtpSink]) -> SmtpSink:
    return smtp_sink_factory("primary1")


@pytest.fixture
def smtp_sink2(smtp_sink_factory: Callable[..., SmtpSink]) -> SmtpSink:
    return smtp_sink_factory("primary2")


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    openssl = require_tool("openssl", "openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=primary.test", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class _Accept:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., int]]:
    started: list[Controller] = []

    def start(**options: Any) -> int:
        port = free_port()
        controller = Controller(_Accept(), hostname="127.0.0.1", port=port, server_hostname="primary.test",
                                ready_timeout=10, **options)
        controller.start()
        started.append(controller)
        return port
    yield start
    for controller in started:
        controller.stop()
