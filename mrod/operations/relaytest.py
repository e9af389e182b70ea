"""The panel's "Test connection" of a relay (a primary mail server): the shared SMTP dialogue
(mrod.infra.smtp.Dialogue: banner, EHLO, STARTTLS — tried whenever offered, to report whether
it works), with a verdict for people:

- ``fail``    — the server is down by the health monitor's measure (Dialogue.up is False):
                refused, timed out, not SMTP, greeting not 220, EHLO refused, or the relay's TLS
                requirement (encrypt/verify/secure) not met. Postfix would defer its mail.
- ``warning`` — up, but TLS is optional (``may``) and STARTTLS is offered yet refused or its
                handshake fails: Postfix delivers in plain text.
- ``ok``      — up, and TLS works where it is offered.

So the panel's "up" (not ``fail``) and the health monitor's "up" are the same answer. It never
raises for network trouble; every outcome is a ProbeResult.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mrod.infra.smtp import Dialogue, converse

OK = "ok"
WARNING = "warning"
FAIL = "fail"
DEFAULT_HELO = "mrod-probe.invalid"


@dataclass(frozen=True)
class ProbeResult:
    verdict: str                      # OK, WARNING or FAIL
    summary: str                      # one sentence for people
    banner: str | None = None         # the 220 greeting
    starttls: bool | None = None      # offered after EHLO (None: not known / implicit TLS)
    tls_ok: bool | None = None        # the handshake (STARTTLS or implicit) worked
    latency_ms: float | None = None   # connect + banner + EHLO
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    @property
    def up(self) -> bool:
        """What the health monitor would record for the same dialogue."""
        return self.verdict != FAIL


async def probe(host: str, port: int, protocol: str = "smtp", timeout: float = 10.0, *, tls: str = "may",
                helo: str = DEFAULT_HELO) -> ProbeResult:
    """Test ``host:port`` speaking ``protocol`` ('smtp' = plain/STARTTLS, 'smtps' = implicit TLS)
    as Postfix would for a relay whose TLS requirement is ``tls``."""
    dialogue = Dialogue(host, port, protocol=protocol, tls=tls, helo=helo, try_starttls=True)
    await converse(dialogue, timeout)
    verdict, summary = _verdict(dialogue)
    return ProbeResult(verdict, summary, str(dialogue.banner) if dialogue.banner else None, dialogue.starttls,
                       dialogue.tls_ok, dialogue.latency_ms, dialogue.steps)


def _verdict(d: Dialogue) -> tuple[str, str]:
    if not d.up:
        return FAIL, f"Failed: {d.fault or 'no answer'}."
    if d.implicit:
        return OK, f"OK: implicit TLS works and the server answers in {d.latency_ms:g} ms."
    if not d.starttls:
        return OK, f"OK: the server answers in {d.latency_ms:g} ms (no STARTTLS: mail goes unencrypted)."
    if not d.tls_ok:
        return WARNING, ("Warning: STARTTLS is offered but does not work (see the steps); Postfix delivers"
                         " in plain text, as the relay's TLS is 'may'.")
    return OK, f"OK: the server answers in {d.latency_ms:g} ms and STARTTLS works."
