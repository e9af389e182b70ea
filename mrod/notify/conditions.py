"""The built-in event sources: primaries down, queues too old or too long, mail about to bounce,
DNS checks in error, stale nodes. Each reads what the other jobs of ``mrod serve`` stored
(relay_health, queue_stat, domain_check, node_status) for this node and registers itself
(mrod.notify.events) when this module is imported.

How long a domain's mail is kept (``queue_lifetimes``) is a replaceable function: by default the
domain's own retention (``domain.queue_lifetime``, enforced by mrod.operations.retention), else
Postfix's ``maximal_queue_lifetime``; ``set_queue_lifetimes`` replaces it (tests).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Awaitable, Callable

from mrod.infra.engine import Target
from mrod.infra.enums import Severity
from mrod.notify.events import Event, SourceContext, register
from mrod.operations import nodereports, syncstatus
from mrod.operations.syncstatus import seconds


async def relays_down(ctx: SourceContext) -> list[Event]:
    """A primary this node's health probes mark down: one event per relay, its domains affected,
    with how much mail waits for them here."""
    async with ctx.conn.execute(
            "SELECT r.id, r.name, r.host, r.port, h.since, h.last_detail FROM relay_health h"
            " JOIN relay r ON r.id = h.relay_id WHERE h.node = ? AND h.state = 'down' ORDER BY r.name",
            (ctx.node,)) as cur:
        down = list(await cur.fetchall())
    found = []
    for relay_id, name, host, port, since, detail in down:
        async with ctx.conn.execute(
                "SELECT d.name, coalesce(q.messages, 0) FROM domain d LEFT JOIN queue_stat q"
                " ON q.domain_id = d.id AND q.node = ? WHERE d.relay_id = ? ORDER BY d.name",
                (ctx.node, relay_id)) as cur:
            rows = list(await cur.fetchall())
        queued = sum(r[1] for r in rows)
        found.append(Event(
            "relay_down", name, Severity.CRITICAL,
            f"primary {name} ({host}:{port}) is down since {since or 'unknown'}"
            f"{f' ({detail})' if detail else ''}; {queued} message(s) queued here for its {len(rows)} domain(s)",
            domains=tuple(r[0] for r in rows),
            resolved=f"is back up ({queued} message(s) were queued here for its domains; delivery starts now)",
            since=since))
    return found


async def _queue_rows(ctx: SourceContext) -> list[tuple[str, int, int | None]]:
    async with ctx.conn.execute(
            "SELECT d.name, q.messages, q.oldest FROM queue_stat q JOIN domain d ON d.id = q.domain_id"
            " WHERE q.node = ? AND q.messages > 0 ORDER BY d.name", (ctx.node,)) as cur:
        return [(r[0], int(r[1]), r[2]) for r in await cur.fetchall()]


def _waited(ctx: SourceContext, oldest: int | None) -> float | None:
    return None if oldest is None else max(0.0, ctx.now.timestamp() - oldest)


async def queue_old(ctx: SourceContext) -> list[Event]:
    """A domain whose oldest queued message here is older than [notify] queue_age."""
    limit = ctx.cfg.notify.queue_age
    if not limit:
        return []
    found = []
    for name, messages, oldest in await _queue_rows(ctx):
        waited = _waited(ctx, oldest)
        if waited is not None and waited >= limit:
            found.append(Event("queue_old", name, Severity.WARNING,
                               f"{name}: {messages} message(s) queued, the oldest for {seconds(waited)}"
                               f" (over {seconds(limit)})", domains=(name,), resolved="queue is no longer old"))
    return found


async def queue_long(ctx: SourceContext) -> list[Event]:
    """A domain with more than [notify] queue_messages messages queued here."""
    limit = ctx.cfg.notify.queue_messages
    if not limit:
        return []
    return [Event("queue_long", name, Severity.WARNING,
                  f"{name}: {messages} message(s) queued (over {limit})", domains=(name,),
                  resolved="queue is below the threshold again")
            for name, messages, _oldest in await _queue_rows(ctx) if messages > limit]


# -- mail about to bounce ---------------------------------------------------------------------------

QueueLifetimes = Callable[[SourceContext, list[str]], Awaitable[dict[str, float]]]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def postfix_duration(text: str, default_unit: str = "d") -> float:
    """A Postfix time value ("5d", "3600s", a bare number in ``default_unit``) in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise ValueError(f"not a Postfix time value: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or default_unit]


# Postfix's setting changes rarely: read again after this long, not every round.
LIFETIME_TTL = 600.0
_read_lifetimes: dict[str, tuple[float, float]] = {}      # config_dir -> (read at, seconds)


async def postfix_lifetime(ctx: SourceContext) -> float:
    """Postfix's maximal_queue_lifetime (``postconf -h``, with [postfix] config_dir)."""
    pf = ctx.cfg.postfix
    known = _read_lifetimes.get(pf.config_dir)
    if known is not None and time.monotonic() - known[0] < LIFETIME_TTL:
        return known[1]
    argv = ["postconf", *(["-c", pf.config_dir] if pf.config_dir else []), "-h", "maximal_queue_lifetime"]
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError("postconf did not answer within 30s") from None
    if proc.returncode:
        raise RuntimeError(f"postconf failed: {err.decode('utf-8', 'replace').strip()[:200]}")
    lifetime = postfix_duration(out.decode().strip())
    _read_lifetimes[pf.config_dir] = (time.monotonic(), lifetime)
    return lifetime


async def postfix_lifetimes(ctx: SourceContext, domains: list[str]) -> dict[str, float]:
    """The default: Postfix's one lifetime for every domain."""
    lifetime = await postfix_lifetime(ctx)
    return {name: lifetime for name in domains}


async def domain_lifetimes(ctx: SourceContext, domains: list[str]) -> dict[str, float]:
    """Each domain's own retention (domain.queue_lifetime, which mrod enforces with postsuper -e:
    mrod.operations.retention), else Postfix's lifetime."""
    own: dict[str, float] = {}
    for start in range(0, len(domains), 500):
        part = domains[start:start + 500]
        async with ctx.conn.execute(f"SELECT name, queue_lifetime FROM domain WHERE queue_lifetime IS NOT NULL"
                                    f" AND name IN ({', '.join('?' * len(part))})", part) as cur:
            own.update((r[0], float(r[1])) for r in await cur.fetchall())
    rest = [name for name in domains if name not in own]
    return {**(await postfix_lifetimes(ctx, rest) if rest else {}), **own}


_lifetimes: list[QueueLifetimes] = [domain_lifetimes]


def set_queue_lifetimes(reader: QueueLifetimes) -> None:
    """Replace how a domain's queue lifetime is found (a per-domain retention: its own, else Postfix's)."""
    _lifetimes[0] = reader


async def queue_expiring(ctx: SourceContext) -> list[Event]:
    """A domain whose oldest queued message bounces (its lifetime runs out) within [notify] expire_within."""
    within = ctx.cfg.notify.expire_within
    rows = [r for r in await _queue_rows(ctx) if r[2] is not None]
    if not within or not rows:
        return []
    lifetimes = await _lifetimes[0](ctx, [r[0] for r in rows])
    found = []
    for name, messages, oldest in rows:
        lifetime, waited = lifetimes.get(name), _waited(ctx, oldest)
        if lifetime is None or waited is None:
            continue
        left = lifetime - waited
        if left <= within:
            when = f"in about {seconds(max(left, 0.0))}" if left > 0 else "now (its lifetime has run out)"
            found.append(Event("queue_expiring", name, Severity.CRITICAL,
                               f"{name}: the oldest of {messages} queued message(s) will bounce {when}"
                               f" (queued {seconds(waited)} of a {seconds(lifetime)} lifetime)", domains=(name,),
                               resolved="no queued mail is close to bouncing any more"))
    return found


# -- DNS checks and nodes ---------------------------------------------------------------------------


async def dns_errors(ctx: SourceContext) -> list[Event]:
    """A domain whose last DNS check from this node found an error."""
    async with ctx.conn.execute(
            "SELECT d.name, c.findings FROM domain_check c JOIN domain d ON d.id = c.domain_id"
            " WHERE c.node = ? AND c.status = 'error' ORDER BY d.name", (ctx.node,)) as cur:
        rows = list(await cur.fetchall())
    found = []
    for name, findings in rows:
        try:
            errors = [f.get("message", "") for f in json.loads(findings) if f.get("level") == "error"]
        except (ValueError, AttributeError, TypeError):
            errors = []
        found.append(Event("dns_error", name, Severity.WARNING,
                           f"{name}: DNS check error: {'; '.join(errors[:3]) or 'see mrod check'}",
                           domains=(name,), resolved="DNS check passes again"))
    return found


async def nodes_stale(ctx: SourceContext) -> list[Event]:
    """A node (several nodes on one PostgreSQL) whose lookupd answers from a stale snapshot."""
    if not Target.of(ctx.cfg.database).shared:
        return []
    views = nodereports.view(await nodereports.rows(ctx.conn), ctx.node, syncstatus.read_for(ctx.cfg),
                             ctx.now.timestamp())
    return [Event("node_stale", v.node, Severity.CRITICAL, v.warning(), resolved="is in sync again")
            for v in views if v.stale]


for _name, _source in (("relays_down", relays_down), ("queue_old", queue_old), ("queue_long", queue_long),
                       ("queue_expiring", queue_expiring), ("dns_errors", dns_errors),
                       ("nodes_stale", nodes_stale)):
    register(_name, _source)
