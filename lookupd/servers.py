"""Thin asyncio listeners for socketmap, tcp_table and the policy service: decode, ask the
service, encode.

Each connection serves one request at a time, in order. Limits: an idle timeout, a deadline
for a request to arrive complete once started (slow clients), a size limit per request
(in the codecs), a cap on connections. Malformed input closes only that connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from dataclasses import dataclass
from typing import Any, Callable, cast

from mrod.infra import endpoints
from mrod.answers.policy import Callout, Decision
from mrod.answers.routing import Answer

from mrod.lookupd import delegation as policy_codec
from mrod.lookupd import socketmap, tcptable
from mrod.lookupd.errors import ProtocolError
from mrod.lookupd.policyservice import PolicyService
from mrod.lookupd.ratelog import RateLimitedLog
from mrod.lookupd.service import LookupService

log = logging.getLogger("mrod.lookupd")


@dataclass(frozen=True)
class Limits:
    idle_timeout: float = 300.0
    request_timeout: float = 10.0
    max_connections: int = 4000


class Listener:
    """One listening endpoint and the connections it accepted."""

    def __init__(self, name: str, endpoint: str, factory: Callable[["Listener"], asyncio.Protocol],
                 limits: Limits, connections: set[RequestConnection]) -> None:
        self.name = name
        self.endpoint = endpoints.parse(endpoint)
        self.factory = factory
        self.limits = limits
        # Shared by every listener of a daemon: max_connections is a process-wide cap.
        self.connections = connections
        self.server: asyncio.Server | None = None
        self.problems = RateLimitedLog(log)
        self.inherited = False   # the socket came from systemd or the supervisor: never unlink it

    async def start(self, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        if sock is not None:
            self.inherited = True
            if ep.is_unix:
                self.server = await loop.create_unix_server(lambda: self.factory(self), sock=sock)
            else:
                self.server = await loop.create_server(lambda: self.factory(self), sock=sock, backlog=1024)
        elif ep.is_unix:
            assert ep.path is not None
            _remove_stale_socket(ep.path)
            self.server = await loop.create_unix_server(lambda: self.factory(self), ep.path)
            # Postfix's daemons run as the postfix user and must be able to connect.
            os.chmod(ep.path, 0o666)
        else:
            assert ep.port is not None
            self.server = await loop.create_server(
                lambda: self.factory(self), ep.host, ep.port, reuse_address=True, backlog=1024)
        log.info("%s listening on %s", self.name, self.address)

    @property
    def address(self) -> str:
        """The bound address (with the real port when the config said port 0)."""
        assert self.server is not None
        if self.endpoint.is_unix:
            return f"unix:{self.endpoint.path}"
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.endpoint.is_unix and self.endpoint.path and not self.inherited:
            try:
                os.unlink(self.endpoint.path)
            except FileNotFoundError:
                pass


def _remove_stale_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


CLOSE = object()   # a handler's answer meaning: send nothing, close the connection


class RequestConnection(asyncio.Protocol):
    """One client: requests decoded in order, answered one at a time.

    Subclasses supply ``decoder`` and ``handle_now(request) -> bytes | CLOSE | None`` (None:
    the answer needs waiting — ``handle_later(request)`` is awaited with reading paused).
    """

    decoder: Any

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._waiting = False          # an answer is being awaited
        self._write_paused = False
        self._closed = False
        self._idle: asyncio.TimerHandle | None = None
        self._active_at = 0.0           # loop time of the last reply (or of the connection)
        self._partial: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._draining = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance(transport, asyncio.Transport): uvloop's transports are not subclasses
        # (the check dropped every connection on uvloop). They have the same methods.
        self.transport = cast(asyncio.Transport, transport)   # duck-typed: uvloop's are no subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        conns = self.listener.connections
        if len(conns) >= self.listener.limits.max_connections:
            self.listener.problems.warning(
                "%s: connection limit (%d) reached; refusing %s",
                self.listener.name, self.listener.limits.max_connections, self.peer)
            self._closed = True
            self.transport.abort()
            return
        conns.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.listener.connections.discard(self)
        for timer in (self._idle, self._partial):
            if timer is not None:
                timer.cancel()
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        whole = getattr(self.decoder, "whole", None)
        if whole is not None and not (self._waiting or self._write_paused or self._partial is not None):
            # Fast path: one complete request in one read (Postfix's way), no buffering.
            request = whole(data)
            if request is not None:
                try:
                    reply = self.handle_now(request)
                except ProtocolError as exc:
                    self._protocol_error(exc)
                    return
                if reply is None:
                    self._wait_for(request)
                else:
                    self._send(reply)
                return
        self.decoder.feed(data)
        self._process()

    def drain(self) -> None:
        """Stop after the request in hand: close now when idle, else once its reply is sent.
        (A request still unread is lost with the connection; Postfix's socketmap and tcp
        clients reconnect and ask again — on another process holding the same socket.)"""
        self._draining = True
        if not self._waiting and self.transport is not None and not self._closed:
            self._closed = True
            self.transport.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def pause_writing(self) -> None:
        # The client does not read its replies: stop reading its requests.
        self._write_paused = True
        self._sync_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._sync_reading()
        self._process()

    # -- the request loop ---------------------------------------------------------------------

    def _process(self) -> None:
        while not (self._closed or self._waiting or self._write_paused):
            try:
                request = self.decoder.next()
                if request is None:
                    break
                reply = self.handle_now(request)
            except ProtocolError as exc:
                self._protocol_error(exc)
                return
            if reply is None:
                self._wait_for(request)
                return
            self._send(reply)
        self._arm_partial()

    def _wait_for(self, request: Any) -> None:
        self._waiting = True
        self._sync_reading()
        self._task = self.loop.create_task(self._answer_later(request))

    async def _answer_later(self, request: Any) -> None:
        reply = await self.handle_later(request)
        self._task = None
        self._waiting = False
        if self._closed:
            return
        self._send(reply)
        if self._draining:
            self.drain()
            return
        self._sync_reading()
        self._process()

    def _send(self, reply: bytes | object) -> None:
        assert self.transport is not None
        if reply is CLOSE:
            self._closed = True
            self.transport.close()
            return
        assert isinstance(reply, bytes)
        self.transport.write(reply)
        self._arm_idle()

    def _protocol_error(self, exc: ProtocolError) -> None:
        self.listener.problems.warning("%s %s: %s; closing the connection", self.listener.name, self.peer, exc)
        assert self.transport is not None
        if exc.reply:
            self.transport.write(exc.reply)
        self._closed = True
        self.transport.close()

    def _sync_reading(self) -> None:
        if self.transport is None or self._closed:
            return
        if self._waiting or self._write_paused:
            self.transport.pause_reading()
        elif not self.transport.is_reading():
            self.transport.resume_reading()

    # -- timers -------------------------------------------------------------------------------

    def _arm_idle(self) -> None:
        """Restart the idle clock. Called for every reply, so it only notes the time: one timer
        per connection, which re-arms itself when it fires after activity (a cancel and a new
        call_later per request cost ~10% of a lookup — BENCHMARKS.md)."""
        self._active_at = self.loop.time()
        if self._idle is None:
            self._idle = self.loop.call_at(self._active_at + self.listener.limits.idle_timeout, self._idle_due)

    def _idle_due(self) -> None:
        self._idle = None
        due = self._active_at + self.listener.limits.idle_timeout
        if self.loop.time() < due:
            self._idle = self.loop.call_at(due, self._idle_due)
            return
        self._timeout("idle")

    def _arm_partial(self) -> None:
        """Start the clock when a request has begun to arrive; stop it when none is pending."""
        if self.decoder.pending:
            if self._partial is None:
                self._partial = self.loop.call_later(
                    self.listener.limits.request_timeout, self._timeout, "incomplete request")
        elif self._partial is not None:
            self._partial.cancel()
            self._partial = None

    def _timeout(self, why: str) -> None:
        if self._closed or self.transport is None:
            return
        if why == "idle" and self._waiting:
            self._arm_idle()
            return
        if why != "idle":
            self.listener.problems.warning("%s %s: %s after %gs; closing", self.listener.name, self.peer, why,
                                           self.listener.limits.request_timeout)
        self._closed = True
        self.transport.close()

    # -- subclass hooks -----------------------------------------------------------------------

    def handle_now(self, request: Any) -> bytes | object | None:
        raise NotImplementedError

    async def handle_later(self, request: Any) -> bytes | object:
        raise NotImplementedError


class LookupConnection(RequestConnection):
    """A map lookup per request, answered by the LookupService."""

    def __init__(self, listener: Listener, service: LookupService) -> None:
        super().__init__(listener)
        self.service = service

    def handle_now(self, request: bytes) -> bytes | None:
        map_name, key = self.parse(request)
        return self.service.reply_now(map_name, key, self.encode_reply)

    async def handle_later(self, request: bytes) -> bytes:
        map_name, key = self.parse(request)
        return self.encode(await self.service.answer_waiting(map_name, key))

    def parse(self, request: bytes) -> tuple[str, bytes]:
        raise NotImplementedError

    def encode(self, result: Answer) -> bytes:
        return self.encode_reply(result.status, result.value)

    @staticmethod
    def encode_reply(status: str, value: str) -> bytes:
        raise NotImplementedError


class SocketmapConnection(LookupConnection):
    def __init__(self, listener: Listener, service: LookupService) -> None:
        super().__init__(listener, service)
        self.decoder = socketmap.NetstringDecoder()

    encode_reply = staticmethod(socketmap.encode_reply)

    def parse(self, request: bytes) -> tuple[str, bytes]:
        return socketmap.parse_request(request)


class TcpTableConnection(LookupConnection):
    def __init__(self, listener: Listener, service: LookupService, map_name: str) -> None:
        super().__init__(listener, service)
        self.map_name = map_name
        self.decoder = tcptable.LineDecoder()

    encode_reply = staticmethod(tcptable.encode_reply)

    def parse(self, request: bytes) -> tuple[str, bytes]:
        return self.map_name, tcptable.parse_request(request)


class PolicyConnection(RequestConnection):
    """Postfix policy delegation: one action per request; internal trouble closes silently."""

    def __init__(self, listener: Listener, service: PolicyService) -> None:
        super().__init__(listener)
        self.service = service
        self.decoder = policy_codec.PolicyDecoder()
        self._callout: Callout | None = None

    def handle_now(self, request: dict[str, str]) -> bytes | object | None:
        decided = self.service.from_memory(request)
        if decided is not None:
            return self._reply(decided)
        if self.service.off_loop:      # PostgreSQL: decided in a worker thread (handle_later)
            return None
        return self._reply(self.service.evaluate(request))

    def _reply(self, result: Decision | Callout | None) -> bytes | object | None:
        """The reply to send, or None when a callout must run first (``self._callout``)."""
        if result is None:
            return CLOSE
        if isinstance(result, Callout):
            self._callout = result
            return None
        return policy_codec.encode_action(self.service.count(result).action)

    async def handle_later(self, request: dict[str, str]) -> bytes | object:
        if self._callout is None:      # not decided yet: the off-loop decision
            reply = self._reply(await self.service.evaluate_off_loop(request))
            if reply is not None:
                return reply
        callout, self._callout = self._callout, None
        assert callout is not None
        decision = await self.service.run_callout(callout)
        if decision is None:
            return CLOSE
        return policy_codec.encode_action(self.service.count(decision).action)
