"""Primary health: probe every relay, keep a history, mark it up or down with hysteresis,
and flush the queue of its domains the moment it is back.

A probe is the shared SMTP dialogue (mrod.infra.smtp.Dialogue): connect (implicit TLS for
``smtps``), the 220 banner, EHLO; for a relay whose ``tls`` is stricter than ``may`` STARTTLS
must be offered and the handshake completed at that level (Postfix would not deliver there
otherwise); with ``may`` only its offer is noted. Latency is connect + banner + EHLO. "Up" is
Dialogue.up — the panel's connection test judges by the same rule.

States (relay_health.state): ``unknown`` (never probed) -> ``up`` at the first success, or
``down`` after ``down_after`` consecutive failures; ``up`` -> ``down`` after ``down_after``
consecutive failures; ``down`` -> ``up`` after ``up_after`` consecutive successes. One lost
probe therefore never flips a state. Every transition is audited (actor ``health``, origin
``system``).

On every transition to ``up`` — from ``down`` and also from ``unknown`` (mail may have been
queued while mrod was not watching: a first start, a relay just added, a restored database) —
the mail queued for that relay's domains is flushed: carefully by default (held, its first
messages tried dry, then given back — or kept on hold by the circuit breaker when the primary
refuses them: mrod.operations.carefulflush), or at once with [flush] careful = false
(``postqueue -s``, through mrod.operations.queueflush.flush_rows: only the recipient domains
that have mail queued, subdomains included). Each outage (down to up) is written to the outage
history (mrod.operations.outages).
Postfix would otherwise wait for its next retry, up to maximal_backoff_time (4000 s).

Per node: every node probes from its own network and flushes its own Postfix, so
states, streaks and history are stored under ``[node] name``; a node's transitions (and so its
auto-flush) follow its own probes only. ``status(node=None)`` lists every node's view.

While a shared PostgreSQL is unreachable the monitor goes on from what it knows —
the relays and this node's states as of its last round, or, after a restart, the relays in
lookupd's snapshot file — and flushes a relay that comes back, finding its domains in that
snapshot: a primary that returns during a database outage gets its mail at once, not at
Postfix's next retry. The states it reached meanwhile are written (and audited, from the
stored state to the new one) at the first round that reaches the database again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable


from mrod.infra.dbapi import Connection
from mrod.answers import snapshot, snapshotfile
from mrod.entities import audit
from mrod.infra import certinfo, db
from mrod.infra.errors import DatabaseUnreachable
from mrod.operations import carefulflush, certchecks, outages, queueflush
from mrod.entities.audit import Actor
from mrod.infra.config import Config
from mrod.infra.smtp import Dialogue, converse

log = logging.getLogger("mrod.health")
ACTOR = Actor.system("health")


@dataclass(frozen=True)
class Probe:
    ok: bool                    # up: Dialogue.up, the same answer as the panel's connection test
    latency_ms: float | None
    starttls: bool | None       # offered (None: not known, or implicit TLS)
    detail: str
    # The relay's certificate as this probe saw it (the certificate findings of mrod.operations.certchecks):
    # tls_seen when a handshake was completed or failed on the certificate; then cert, or cert_error.
    tls_seen: bool = False
    cert: certinfo.CertInfo | None = None
    cert_error: str | None = None


async def probe(host: str, port: int, *, protocol: str = "smtp", tls: str = "may", timeout: float = 10.0,
                helo: str = "localhost") -> Probe:
    """One probe through the shared dialogue; STARTTLS is completed only where the relay's TLS
    requirement needs it (with 'may' it is optional, so only its offer is noted)."""
    dialogue = Dialogue(host, port, protocol=protocol, tls=tls, helo=helo, try_starttls=False)
    await converse(dialogue, timeout)
    seen = await certinfo.seen(dialogue.peer_cert, dialogue.cert_error)
    if not dialogue.up:
        return Probe(False, dialogue.latency_ms, dialogue.starttls, (dialogue.fault or "no answer")[:300], *seen)
    banner = dialogue.banner.lines[0] if dialogue.banner and dialogue.banner.lines else "220"
    return Probe(True, dialogue.latency_ms, dialogue.starttls, banner[:200], *seen)



# -- hysteresis -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    state: str = "unknown"
    since: str | None = None
    ok_streak: int = 0
    fail_streak: int = 0


def next_state(current: State, ok: bool, *, down_after: int, up_after: int, now: str) -> State:
    if ok:
        streak = current.ok_streak + 1
        up = current.state == "unknown" or (current.state == "down" and streak >= up_after)
        state = "up" if up else current.state
        return State(state, now if state != current.state else current.since, streak, 0)
    streak = current.fail_streak + 1
    state = "down" if current.state != "down" and streak >= down_after else current.state
    return State(state, now if state != current.state else current.since, 0, streak)


@dataclass(frozen=True)
class Transition:
    relay_id: int
    relay: str
    before: str
    after: str
    detail: str


# -- the monitor ------------------------------------------------------------------------------------

Flusher = Callable[[Config, dict[int, str]], Awaitable[list[queueflush.FlushResult]]]


class HealthMonitor:
    """One round probes every relay; ``mrod serve`` runs a round every [health] interval."""

    def __init__(self, cfg: Config, flusher: Flusher | None = None) -> None:
        self.cfg = cfg
        self.settings = cfg.health
        self.node = cfg.node.name
        # The careful flush (hold, a dry trial, then the rest) unless [flush] careful = false.
        self.flusher = flusher or (carefulflush.flush_rows if cfg.flush.careful else queueflush.flush_rows)
        self.last_flush: list[queueflush.FlushResult] = []
        self._relays: list[dict[str, Any]] = []     # as of the last round that reached the database
        self._states: dict[int, State] = {}         # this node's, as stored then
        self._offline: dict[int, State] = {}        # reached while the database was gone, not stored yet

    async def run_once(self) -> list[Transition]:
        try:
            async with db.opened(self.cfg.database) as conn:
                relays = await _relays(conn)
        except DatabaseUnreachable as exc:
            relays = self._relays or (await self._snapshot(exc)).relay_rows()
            return await self._offline_round(relays, await self._probe_all(relays), exc)
        probes = await self._probe_all(relays)
        try:
            async with db.opened(self.cfg.database) as conn:
                transitions = await self.record(conn, list(zip(relays, probes, strict=True)))
                back = {t.relay_id for t in transitions if t.after == "up"}
                rows = await _domains_of(conn, back) if back and self.settings.flush_on_up else {}
        except DatabaseUnreachable as exc:      # lost between the two: the probes still count
            return await self._offline_round(relays, probes, exc)
        self._relays = relays
        if rows:
            self.last_flush = await self.flusher(self.cfg, rows)
        return transitions

    async def _probe_all(self, relays: list[dict[str, Any]]) -> list[Probe]:
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(relay: dict[str, Any]) -> Probe:
            async with gate:
                return await probe(relay["host"], relay["port"], protocol=relay["protocol"], tls=relay["tls"],
                                   timeout=self.settings.timeout, helo=self.settings.helo_name)

        return list(await asyncio.gather(*(one(r) for r in relays)))

    async def _snapshot(self, why: DatabaseUnreachable) -> snapshot.RouteSnapshot:
        # A file read and a JSON parse as large as the routing table: not on the panel's loop.
        try:
            return await asyncio.to_thread(snapshotfile.of_node, self.cfg)
        except (OSError, ValueError) as exc:
            raise DatabaseUnreachable(f"{why}; no routing snapshot to go on from ({exc})") from None

    async def _offline_round(self, relays: list[dict[str, Any]], probes: list[Probe], why: DatabaseUnreachable
                             ) -> list[Transition]:
        """A round without the database: states in memory, a relay back flushed through the
        routing snapshot lookupd keeps on disk."""
        now = db.now()
        transitions = []
        for relay, result in zip(relays, probes, strict=True):
            current = self._offline.get(relay["id"]) or self._states.get(relay["id"], State())
            new = next_state(current, result.ok, down_after=self.settings.down_after,
                             up_after=self.settings.up_after, now=now)
            self._offline[relay["id"]] = new
            if new.state != current.state:
                transitions.append(Transition(relay["id"], relay["name"], current.state, new.state, result.detail))
                (log.info if new.state == "up" else log.warning)(
                    "relay %s is %s from node %s (was %s): %s (database unreachable: stored when it is back)",
                    relay["name"], new.state, self.node, current.state, result.detail)
        back = {t.relay_id for t in transitions if t.after == "up"}
        if back and self.settings.flush_on_up:
            rows = (await self._snapshot(why)).domains_routed_by(back)
            if rows:
                self.last_flush = await self.flusher(self.cfg, rows)
        return transitions

    async def record(self, conn: Connection, results: list[tuple[dict[str, Any], Probe]]
                     ) -> list[Transition]:
        now = db.now()
        cutoff = db.stamp(datetime.now(timezone.utc) - timedelta(hours=self.settings.history_hours))
        transitions = []
        async with db.transaction(conn):
            for relay, result in results:
                stored = await _state(conn, relay["id"], self.node)
                # On from where it got to while the database was gone (if it was probed then);
                # the transition (audit, flush) is from what was stored.
                new = next_state(self._offline.pop(relay["id"], stored), result.ok,
                                 down_after=self.settings.down_after, up_after=self.settings.up_after, now=now)
                self._states[relay["id"]] = new
                await conn.execute(
                    "INSERT INTO health_probe (node, relay_id, at, ok, latency_ms, starttls, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.node, relay["id"], now, int(result.ok), result.latency_ms, _bool(result.starttls),
                     result.detail))
                await conn.execute(
                    "INSERT INTO relay_health (node, relay_id, state, since, ok_streak, fail_streak, last_probe_at,"
                    " last_ok, last_latency_ms, last_detail, starttls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (node, relay_id) DO UPDATE SET state = excluded.state, since = excluded.since,"
                    " ok_streak = excluded.ok_streak, fail_streak = excluded.fail_streak,"
                    " last_probe_at = excluded.last_probe_at, last_ok = excluded.last_ok,"
                    " last_latency_ms = excluded.last_latency_ms, last_detail = excluded.last_detail,"
                    " starttls = excluded.starttls",
                    (self.node, relay["id"], new.state, new.since, new.ok_streak, new.fail_streak, now, int(result.ok),
                     result.latency_ms, result.detail, _bool(result.starttls)))
                if result.tls_seen:     # else the last certificate seen stays
                    await certchecks.store_relay_certificate(conn, self.node, relay["id"], result.cert,
                                                             result.cert_error)
                if new.state != stored.state:
                    t = Transition(relay["id"], relay["name"], stored.state, new.state, result.detail)
                    transitions.append(t)
                    streak = new.ok_streak if new.state == "up" else new.fail_streak
                    await audit.record(conn, ACTOR, "state", "relay", relay["name"], {"state": stored.state},
                                       {"state": new.state, "probes": streak, "detail": result.detail,
                                        "node": self.node})
                    (log.info if new.state == "up" else log.warning)(
                        "relay %s is %s from node %s (was %s): %s", relay["name"], new.state, self.node,
                        stored.state, result.detail)
                    if new.state == "down":
                        await outages.started(conn, self.node, relay["id"], now)
                    elif stored.state == "down":
                        await outages.ended(conn, self.node, relay["id"], now)
            await conn.execute("DELETE FROM health_probe WHERE at < ?", (cutoff,))
            # States from before migration 0007 (node ''): this node's own now replace them.
            await conn.execute("DELETE FROM relay_health WHERE node = ''")
        return transitions


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


async def _relays(conn: Connection) -> list[dict[str, Any]]:
    async with conn.execute("SELECT id, name, host, port, protocol, tls FROM relay ORDER BY name") as cur:
        return [dict(r) for r in await cur.fetchall()]


async def _state(conn: Connection, relay_id: int, node: str) -> State:
    async with conn.execute("SELECT state, since, ok_streak, fail_streak FROM relay_health"
                            " WHERE node = ? AND relay_id = ?", (node, relay_id)) as cur:
        row = await cur.fetchone()
    return State(*row) if row else State()


async def _domains_of(conn: Connection, relay_ids: set[int]) -> dict[int, str]:
    if not relay_ids:
        return {}           # PostgreSQL refuses an empty IN ()
    marks = ", ".join("?" * len(relay_ids))
    async with conn.execute(f"SELECT id, name FROM domain WHERE relay_id IN ({marks})", tuple(relay_ids)) as cur:
        return {row[0]: row[1] for row in await cur.fetchall()}


# -- reading it back --------------------------------------------------------------------------------


async def status(conn: Connection, *, owner_id: int | None = None, node: str | None = None
                 ) -> list[dict[str, Any]]:
    """Every relay with its current health (state 'unknown' until first probed) as ``node``
    sees it; with node None, one row per relay and node that probed it (node None: never)."""
    on, args = ("AND h.node = ?", (node,)) if node is not None else ("", ())
    where = ""
    if owner_id is not None:
        where, args = "WHERE r.owner_id = ?", (*args, owner_id)
    async with conn.execute(
        "SELECT r.id, r.name, r.host, r.port, r.protocol, r.tls, coalesce(h.state, 'unknown') AS state, h.since,"
        " h.ok_streak, h.fail_streak, h.last_probe_at, h.last_ok, h.last_latency_ms, h.last_detail, h.starttls,"
        " (SELECT count(*) FROM domain d WHERE d.relay_id = r.id) AS domains, h.node,"
        " h.cert_not_after, h.cert_names, h.cert_error"
        f" FROM relay r LEFT JOIN relay_health h ON h.relay_id = r.id {on} {where} ORDER BY r.name, h.node",
        args) as cur:
        rows = [dict(r) for r in await cur.fetchall()]
    for row in rows:
        for key in ("last_ok", "starttls"):
            row[key] = None if row[key] is None else bool(row[key])
    return rows


async def history(conn: Connection, relay_id: int, limit: int = 50, *, node: str | None = None
                  ) -> list[dict[str, Any]]:
    """The relay's latest probes, newest first: one node's, or every node's (node None)."""
    on, args = (" AND node = ?", (node,)) if node is not None else ("", ())
    async with conn.execute(
        f"SELECT at, ok, latency_ms, starttls, detail, node FROM health_probe WHERE relay_id = ?{on}"
        " ORDER BY id DESC LIMIT ?", (relay_id, *args, limit)) as cur:
        return [dict(r) for r in await cur.fetchall()]
