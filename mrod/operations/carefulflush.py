"""The careful flush: a primary that comes back gets its backlog only once it has shown it
takes it — and a primary that returns refusing mail trips a circuit breaker that keeps the
backlog on hold instead of letting Postfix bounce every message of it.

When the health monitor marks a relay up (after [health] up_after good probes in a row: the
"N good probes" rule), for each of its domains with mail queued on this node:

1. **hold** the domain's queued messages (``postsuper -h``): from here Postfix can neither
   deliver nor bounce them, whatever its own retry schedule says;
2. **try** the first [flush] trial_messages of them (oldest first) *dry*, on one SMTP
   connection to the primary: ``MAIL FROM:<their sender>``, ``RCPT TO:<each recipient>``,
   ``RSET`` — no DATA, so nothing is delivered and nothing can bounce. A message is refused
   when the primary answers its MAIL FROM or all of its RCPTs with 5xx;
3. **judge**: when [flush] trip_refusals of [flush] trial_messages are refused (scaled down
   when fewer messages are waiting: the same share), the breaker trips — the domain is held
   (mrod.entities.holds, reason ``breaker``), its mail stays on hold, new mail is held too at
   each queue round, and the operator releases it when the primary is fixed (``mrod domain
   release D``). Otherwise the messages are given back (``postsuper -H``, ``postqueue -i``:
   delivered now, at the pace of [flush] concurrency / rate_delay that `mrod postfix-config`
   sets for the relay transport). A trial that cannot reach the primary gives the mail back,
   as a plain flush would; where postsuper cannot run ([postfix] postsuper: root's), the
   domain is flushed at once as before (queueflush), with a warning.

Why dry and held, not "deliver N, look, deliver the rest": Postfix delivers a flushed backlog
within seconds, and a refused delivery bounces at once — a breaker that reads the outcome of
real deliveries reacts after the damage (and soft_bounce for the trial would need a second
transport in the routing answers). Holding first closes the race with Postfix's own retries;
trying RCPT dry judges the primary by the replies that would have bounced the mail. What a dry
trial cannot see is a refusal at end of DATA (content filtering): for that, after the release
the first real deliveries are read from Postfix's log ([flush] watch_seconds,
mrod.operations.releasewatch) and the same verdict puts what is still queued back on hold —
the messages delivered before it bounce, as many as the pace ([flush] rate_delay) let through.

The window left: between the primary answering again and the monitor's verdict (up_after
probes, one [health] interval apart) Postfix may retry some of the backlog on its own schedule.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from mrod.answers.callout import smtp_path
from mrod.entities import holds
from mrod.entities.audit import Actor
from mrod.infra import db, enums
from mrod.infra.config import Config
from mrod.infra.errors import MrodError
from mrod.infra.smtp import Dialogue, SmtpClient, converse
from mrod.operations import holdqueue, queueflush, queuemessages, releasewatch
from mrod.operations.postqueue import QueueUnavailable

log = logging.getLogger("mrod.flush")
TRIALS_AT_ONCE = 4
ACTOR = Actor.system("breaker")


@dataclass(frozen=True)
class Trial:
    tried: int
    refused: int
    detail: str               # the last refusal, or why the trial could not run

    def trips(self, trial_messages: int, trip_refusals: int) -> bool:
        if self.tried == 0:
            return False
        need = max(1, -(-min(trip_refusals, trial_messages) * self.tried // trial_messages))  # ceiling
        return self.refused >= need


async def try_dry(route: dict[str, Any], messages: list[queuemessages.Message], *, helo: str,
                  timeout: float) -> Trial:
    """MAIL FROM / RCPT TO / RSET per message on one connection; never DATA."""
    dialogue = Dialogue(route["host"], route["port"], protocol=route["protocol"], tls=route["tls"], helo=helo,
                        try_starttls=True)

    async def transaction(client: SmtpClient) -> Trial:
        tried = refused = 0
        detail = ""
        for message in messages:
            sender = "" if message.sender == "MAILER-DAEMON" else message.sender
            reply = await client.command(f"MAIL FROM:<{smtp_path(sender) if sender else ''}>")
            if reply.code // 100 == 2:
                codes = []
                for address in message.recipients:
                    answer = await client.command(f"RCPT TO:<{smtp_path(address)}>")
                    codes.append(answer.code)
                    if answer.code // 100 == 5:
                        detail = f"RCPT TO:<{address}>: {answer}"
                tried += 1
                refused += all(c // 100 == 5 for c in codes)
            elif reply.code // 100 == 5:
                tried += 1
                refused += 1
                detail = f"MAIL FROM:<{sender}>: {reply}"
            await client.command("RSET")
        return Trial(tried, refused, detail)

    result = await converse(dialogue, timeout, transaction)
    return result if result is not None else Trial(0, 0, dialogue.fault or "no answer")


async def _routes(cfg: Config, rows: dict[int, str]) -> dict[int, dict[str, Any]]:
    marks = ", ".join("?" * len(rows))
    async with db.opened(cfg.database) as conn:
        async with conn.execute(
                "SELECT d.id, r.host, r.port, r.protocol, r.tls, h.domain_id FROM domain d"
                " JOIN relay r ON r.id = d.relay_id LEFT JOIN domain_hold h ON h.domain_id = d.id"
                f" WHERE d.id IN ({marks})", tuple(rows)) as cur:
            return {row[0]: {"host": row[1], "port": row[2], "protocol": row[3], "tls": row[4],
                             "held": row[5] is not None} for row in await cur.fetchall()}


async def flush_domain(cfg: Config, domain_id: int, name: str, route: dict[str, Any],
                       messages: list[queuemessages.Message]) -> queueflush.FlushResult:
    settings = cfg.flush
    try:
        await holdqueue.hold_messages(cfg, messages, {name: domain_id})
    except QueueUnavailable as exc:
        # postsuper is root's ([postfix] postsuper): without it, today's flush rather than none.
        log.warning("careful flush of %s not possible (%s); flushing at once", name, exc)
        flushed = await queueflush.flush_rows(cfg, {domain_id: name})
        return queueflush.FlushResult(name, all(r.ok for r in flushed),
                                      f"careful flush not possible ({exc}); flushed at once")
    trial = await try_dry(route, messages[:settings.trial_messages], helo=cfg.health.helo_name,
                          timeout=cfg.health.timeout * 3)
    if trial.trips(settings.trial_messages, settings.trip_refusals):
        detail = (f"the primary refused {trial.refused} of the first {trial.tried} queued message(s) with 5xx"
                  f" ({trial.detail}); {len(messages)} message(s) kept on hold")
        async with db.opened(cfg.database) as conn:
            await holds.hold(conn, ACTOR, name, reason=enums.HoldReason.BREAKER, node=cfg.node.name, detail=detail)
        log.warning("circuit breaker tripped for %s: %s; `mrod domain release %s` when the primary is fixed",
                    name, detail, name)
        return queueflush.FlushResult(name, False, f"breaker tripped: {detail}")
    start = await asyncio.to_thread(releasewatch.log_end, cfg) if settings.watch_seconds else None
    given = await holdqueue.give_back(cfg, [m.queue_id for m in messages])
    how = (f"trial: {trial.refused} of {trial.tried} refused" if trial.tried
           else f"trial not possible ({trial.detail})")
    log.info("careful flush of %s: %s; %d message(s) released", name, how, given)
    if start is not None and given:
        return await _watch(cfg, domain_id, name, start, messages, how, given)
    return queueflush.FlushResult(name, True, f"{how}; {given} message(s) released")


async def _watch(cfg: Config, domain_id: int, name: str, start: tuple[Any, int],
                 messages: list[queuemessages.Message], how: str, given: int) -> queueflush.FlushResult:
    """The second look (mrod.operations.releasewatch): refused deliveries put the rest back on hold."""
    settings = cfg.flush
    known, refused, last = await releasewatch.judge(cfg, start, {m.queue_id for m in messages})
    if not Trial(known, refused, last).trips(settings.trial_messages, settings.trip_refusals):
        return queueflush.FlushResult(name, True, f"{how}; {given} message(s) released; "
                                                  f"{refused} of the first {known} delivered refused")
    left = [m for m in await queuemessages.of_domains(cfg, {name}) if m.queue_name != "hold"]
    await holdqueue.hold_messages(cfg, left, {name: domain_id})
    detail = (f"the primary refused {refused} of the first {known} message(s) delivered after the release "
              f"({last}); {len(left)} message(s) still queued put back on hold")
    async with db.opened(cfg.database) as conn:
        await holds.hold(conn, ACTOR, name, reason=enums.HoldReason.BREAKER, node=cfg.node.name, detail=detail)
    log.warning("circuit breaker tripped for %s: %s; `mrod domain release %s` when the primary is fixed",
                name, detail, name)
    return queueflush.FlushResult(name, False, f"breaker tripped: {detail}")


async def flush_rows(cfg: Config, rows: dict[int, str]) -> list[queueflush.FlushResult]:
    """The health monitor's flusher when [flush] careful: the careful flush of each domain row
    (id -> name) with mail queued; a plain flush when the queue or the database cannot be used."""
    if not rows:
        return []
    try:
        routes = await _routes(cfg, rows)
        messages = await queuemessages.of_domains(cfg, set(rows.values()))
    except MrodError as exc:
        log.warning("careful flush not possible (%s); flushing the domains at once", exc)
        return await queueflush.flush_rows(cfg, rows)
    # A relay with many domains: several trials at once, not one after another (each is one
    # short SMTP connection to the primary), and never more than a few.
    gate = asyncio.Semaphore(TRIALS_AT_ONCE)

    async def one(domain_id: int, name: str) -> queueflush.FlushResult | None:
        route = routes.get(domain_id)
        mine = [m for m in messages if m.domain == name and m.queue_name != "hold"]   # not held by hand
        if route is None or not mine:
            return None
        if route["held"]:
            return queueflush.FlushResult(name, False, "held: its mail stays on hold")
        async with gate:
            try:
                return await flush_domain(cfg, domain_id, name, route, mine)
            except MrodError as exc:       # QueueUnavailable, the database gone meanwhile
                log.warning("careful flush of %s failed: %s", name, exc)
                return queueflush.FlushResult(name, False, str(exc))

    found = await asyncio.gather(*(one(i, n) for i, n in sorted(rows.items(), key=lambda r: r[1])))
    return [r for r in found if r is not None]
