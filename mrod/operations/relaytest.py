"""Test a relay (a primary mail server): connect, read the 220 banner, EHLO, see whether it
offers STARTTLS (and whether the TLS handshake works), measure latency, give a verdict.

``probe()`` is reusable: the panel's "test connection" uses it, and so can a health checker.
It never raises for network trouble; every outcome is a ProbeResult.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field

from mrod.infra import oserrors
from mrod.infra.smtp import SmtpClient, SmtpError

OK = "ok"             # accepts mail as configured
WARNING = "warning"   # answers, but something will hurt delivery (e.g. TLS required, not offered)
FAIL = "fail"         # unreachable, or not an SMTP server that accepts us
DEFAULT_HELO = "mrod-probe.invalid"


@dataclass(frozen=True)
class ProbeResult:
    verdict: str                      # OK, WARNING or FAIL
    summary: str                      # one sentence for people
    banner: str | None = None         # the 220 greeting
    starttls: bool | None = None      # offered after EHLO (None: not known / implicit TLS)
    tls_ok: bool | None = None        # the handshake (STARTTLS or implicit) worked
    latency_ms: float | None = None   # connect + banner
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == OK


async def probe(host: str, port: int, protocol: str = "smtp", timeout: float = 10.0, *, tls: str = "may",
                helo: str = DEFAULT_HELO) -> ProbeResult:
    """Probe ``host:port`` speaking ``protocol`` ('smtp' = plain/STARTTLS, 'smtps' = implicit TLS).
    ``tls`` is the relay's requirement: with anything but 'may' a missing STARTTLS is a warning."""
    steps: list[str] = []
    state: dict[str, object] = {}
    try:
        return await asyncio.wait_for(_dialogue(host, port, protocol, tls, helo, steps, state), timeout)
    except asyncio.TimeoutError:
        return _failed(f"no answer within {timeout:g} s", steps, state)
    except ssl.SSLError as exc:
        return _failed(f"TLS handshake failed: {exc.reason or exc}", steps, state)
    except ConnectionRefusedError:
        return _failed(f"connection refused: nothing listens on {host} port {port}", steps, state)
    except socket.gaierror as exc:
        return _failed(f"cannot resolve {host}: {exc.strerror or exc}", steps, state)
    except (OSError, SmtpError, UnicodeError) as exc:
        return _failed(oserrors.describe(exc), steps, state)


def _failed(why: str, steps: list[str], state: dict[str, object]) -> ProbeResult:
    steps.append(f"failed: {why}")
    return ProbeResult(FAIL, f"Failed: {why}.", banner=state.get("banner"),  # type: ignore[arg-type]
                       latency_ms=state.get("latency"), steps=steps)  # type: ignore[arg-type]


async def _dialogue(host: str, port: int, protocol: str, tls: str, helo: str, steps: list[str],
                    state: dict[str, object]) -> ProbeResult:
    implicit = protocol == "smtps"
    started = time.perf_counter()
    steps.append(f"connecting to {host} port {port}" + (" with implicit TLS" if implicit else ""))
    client = await SmtpClient.connect(host, port, implicit_tls=implicit, tls="may")
    try:
        greeting = await client.reply()
        latency = round((time.perf_counter() - started) * 1000, 1)
        state.update(banner=str(greeting), latency=latency)
        steps.append(f"banner: {greeting}")
        if greeting.code != 220:
            return ProbeResult(FAIL, f"Failed: the server greets with {greeting.code}, not 220 (it refuses mail).",
                               str(greeting), None, implicit or None, latency, steps)
        ehlo = await client.ehlo(helo)
        steps.append(f"EHLO {helo}: {ehlo.code}")
        if ehlo.code != 250:
            return ProbeResult(WARNING, f"Warning: the server answered EHLO with {ehlo.code}.",
                               str(greeting), None, implicit or None, latency, steps)
        if implicit:
            return ProbeResult(OK, f"OK: implicit TLS works and the server answers in {latency:g} ms.",
                               str(greeting), None, True, latency, steps)
        offered = "STARTTLS" in client.extensions
        steps.append("STARTTLS offered" if offered else "STARTTLS not offered")
        if not offered:
            if tls != "may":
                return ProbeResult(WARNING, f"Warning: the relay requires TLS ({tls}) but the server offers no"
                                   " STARTTLS; Postfix will defer its mail.", str(greeting), False, None,
                                   latency, steps)
            return ProbeResult(OK, f"OK: the server answers in {latency:g} ms (no STARTTLS: mail goes unencrypted).",
                               str(greeting), False, None, latency, steps)
        reply = await client.starttls("may")
        steps.append(f"STARTTLS: {reply.code}" + (" handshake done" if reply.code == 220 else ""))
        if reply.code != 220:
            return ProbeResult(WARNING, f"Warning: STARTTLS is offered but refused ({reply}).", str(greeting),
                               True, False, latency, steps)
        return ProbeResult(OK, f"OK: the server answers in {latency:g} ms and STARTTLS works.", str(greeting),
                           True, True, latency, steps)
    finally:
        await client.close()
