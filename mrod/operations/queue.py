"""Postfix's queue: read it (``postqueue -j``), keep per-domain figures, flush a domain.

* ``read(cfg)`` streams ``postqueue [-c DIR] -j`` and aggregates per recipient domain and per
  mrod domain row (routing.match: a subdomain counts for the domain that relays it). A queue of
  any size is read in bounded memory; bad lines are counted, not fatal.
* ``refresh(cfg)`` also writes the ``queue_stat`` table, which the policy service's per-domain
  quota reads. Rows are per node (``[node] name``): each node has its own Postfix
  queue, writes only its own rows, and its quota reads only them.
* ``flush(cfg, names)`` runs ``postqueue -s DOMAIN`` for each name: Postfix's flush service
  then delivers the mail deferred for that domain at once, instead of at its next backoff.

Postfix down (``postqueue`` exits 69, "mail system is down"), a missing binary or a run past
``[queue] timeout`` raise QueueUnavailable with a message for the operator. Every subprocess
runs off the event loop (asyncio subprocesses) and is killed at its timeout.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Hashable, Iterable

import aiosqlite

from mrod.infra import db, names
from mrod.answers import routing, snapshot
from mrod.infra.config import Config
from mrod.infra.errors import DatabaseNotReady, MrodError
from mrod.operations.queueparse import Aggregator, DomainQueue, QueueParser
from mrod.answers import routesource

log = logging.getLogger("mrod.queue")

STDERR_LIMIT = 64 * 1024
CHUNK = 256 * 1024


class QueueUnavailable(MrodError):
    """Postfix's queue cannot be read or flushed (Postfix down, not installed, too slow)."""


@dataclass
class QueueReport:
    domains: dict[str, DomainQueue]              # by recipient domain
    rows: dict[int, DomainQueue]                 # by mrod domain id (named after the row)
    messages: int
    bytes: int
    queues: dict[str, int]                       # messages per Postfix queue (deferred, hold, ...)
    bad_lines: int
    unknown_fields: list[str]
    read_at: str
    _aggregator: Aggregator | None = field(default=None, repr=False)

    def domains_of(self, domain_id: int) -> list[str]:
        """Recipient domains with mail queued that a row relays (itself and its subdomains)."""
        return self._aggregator.domains_of(domain_id) if self._aggregator else []

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "bytes": self.bytes, "queues": self.queues,
            "bad_lines": self.bad_lines, "unknown_fields": self.unknown_fields, "read_at": self.read_at,
            "domains": [q.as_dict() for q in sorted(self.domains.values(), key=lambda q: q.name)],
            "mrod_domains": [{"id": i, **q.as_dict()} for i, q in sorted(self.rows.items(), key=lambda r: r[1].name)],
        }


def command(cfg: Config, *args: str) -> list[str]:
    pf = cfg.postfix
    return [pf.postqueue, *(["-c", pf.config_dir] if pf.config_dir else []), *args]


def routes(cfg: Config) -> tuple[routing.Store, Callable[[], None]] | None:
    """What decides routes for the jobs that read the queue: the database (waiting for a busy
    SQLite as long as a lookup does), or — a shared PostgreSQL that is gone — the routing
    snapshot lookupd keeps on disk (what lookupd itself answers from meanwhile). With ``close``;
    None when neither can be had."""
    try:
        store = routesource.open_store(cfg.database, busy_timeout_ms=int(cfg.lookupd.lookup_deadline * 1000))
    except DatabaseNotReady:
        snap = _snapshot_of(cfg) if cfg.database.url else None
        return None if snap is None else (snap, lambda: None)
    return store, store.close


def _classifier(cfg: Config):  # noqa: ANN202 - returns (classify, close)
    """routing.match against ``routes``: recipient domain -> (domain id, name) or None. The
    store stays open for the whole queue listing (one per message would be slow)."""
    found = routes(cfg)
    if found is None:
        return None, lambda: None
    return _classify_with(found[0]), found[1]


def _classify_with(store: routing.Store):  # noqa: ANN202 - returns classify
    def classify(domain: str) -> tuple[Hashable, str] | None:
        name = names.lookup_domain(domain)
        found = routing.match(store, name) if name else None
        return (found[0].id, found[0].name) if found else None

    return classify


def _snapshot_of(cfg: Config) -> snapshot.RouteSnapshot | None:
    try:
        return snapshot.of_node(cfg.database)
    except (OSError, ValueError):
        return None


async def read(cfg: Config, *, classify_rows: bool = True) -> QueueReport:
    """The queue now. Raises QueueUnavailable."""
    classify, close = _classifier(cfg) if classify_rows else (None, lambda: None)
    parser = QueueParser(cfg.queue.max_line_bytes)
    aggregator = Aggregator(classify)
    try:
        proc = await _spawn(command(cfg, "-j"))
        stderr_task = asyncio.ensure_future(_read_limited(proc.stderr))
        try:
            async with asyncio.timeout(cfg.queue.timeout):
                assert proc.stdout is not None
                while chunk := await proc.stdout.read(CHUNK):
                    aggregator.add_all(parser.feed(chunk))
                aggregator.add_all(parser.close())
                stderr = await stderr_task
                code = await proc.wait()
        except TimeoutError:
            await _kill(proc)
            raise QueueUnavailable(f"postqueue -j did not finish within {cfg.queue.timeout:g}s "
                                   "([queue] timeout)") from None
        finally:
            stderr_task.cancel()
            if proc.returncode is None:
                await _kill(proc)
    finally:
        close()
    if code != 0:
        raise QueueUnavailable(_failure("postqueue -j", code, stderr))
    if parser.bad_lines:
        log.warning("postqueue -j: skipped %d line(s) that were not queue entries", parser.bad_lines)
    return QueueReport(
        domains=aggregator.domains, rows={k: v for k, v in aggregator.rows.items() if isinstance(k, int)},
        messages=aggregator.messages, bytes=aggregator.bytes, queues=dict(aggregator.queues),
        bad_lines=parser.bad_lines, unknown_fields=sorted(parser.unknown_fields), read_at=db.now(),
        _aggregator=aggregator)


async def _spawn(argv: list[str]) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=CHUNK)
    except FileNotFoundError:
        raise QueueUnavailable(f"{argv[0]} not found: install Postfix or set [postfix] postqueue") from None
    except PermissionError:
        raise QueueUnavailable(f"{argv[0]} cannot be run (permission denied)") from None


async def _read_limited(stream: asyncio.StreamReader | None) -> bytes:
    data = bytearray()
    if stream is None:
        return b""
    while chunk := await stream.read(CHUNK):
        if len(data) < STDERR_LIMIT:
            data += chunk[:STDERR_LIMIT - len(data)]
    return bytes(data)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    await proc.wait()


def _failure(what: str, code: int, stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    # "postqueue: fatal: Cannot flush mail queue - mail system is down"
    text = lines[-1].split("fatal: ", 1)[-1] if lines else "no message"
    if any("mail system is down" in ln.lower() for ln in lines):
        return f"{what} failed (exit {code}): Postfix is not running ({text}); start it: `postfix start`"
    return f"{what} failed (exit {code}): {text}"


# -- queue_stat: what the policy quota reads ------------------------------------------------------


async def write_stats(conn: aiosqlite.Connection, report: QueueReport, node: str) -> None:
    """Replace this node's queue_stat rows with the report's per-row figures (one transaction);
    other nodes' rows stay. Rows from before migration 0007 (node '') go too."""
    rows = [(node, domain_id, q.messages, q.bytes, q.oldest, q.last_reason, report.read_at)
            for domain_id, q in report.rows.items()]
    async with db.transaction(conn):
        await conn.execute("DELETE FROM queue_stat WHERE node IN (?, '')", (node,))
        # A row deleted since the queue was read is skipped (its id no longer exists).
        await conn.executemany(
            "INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, last_reason, updated_at)"
            " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM domain WHERE id = ?)",
            [(*row, row[1]) for row in rows])


async def refresh(cfg: Config) -> QueueReport:
    """Read the queue and store the per-domain figures for the quota."""
    report = await read(cfg)
    async with db.opened(cfg.database) as conn:
        await write_stats(conn, report, cfg.node.name)
    return report


async def stats(conn: aiosqlite.Connection, *, owner_id: int | None = None, node: str | None = None
                ) -> list[dict[str, Any]]:
    """The stored per-domain figures (as the last refresh saw them), largest first; with
    ``owner_id``, only that user's domains (permission domains_own); with ``node``, only that
    node's queue (None: every node's, one row per node and domain)."""
    sql = ("SELECT d.id, d.name, d.owner_id, q.messages, q.bytes, q.oldest, q.last_reason, q.updated_at, q.node"
           " FROM queue_stat q JOIN domain d ON d.id = q.domain_id")
    where, args = _filters(owner_id, node)
    async with conn.execute(sql + where + " ORDER BY q.messages DESC, d.name, q.node", args) as cur:
        rows = await cur.fetchall()
    keys = ("id", "domain", "owner_id", "messages", "bytes", "oldest", "last_reason", "updated_at", "node")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _filters(owner_id: int | None, node: str | None) -> tuple[str, tuple[Any, ...]]:
    """' WHERE …' for queue_stat q joined with domain d, and its arguments."""
    terms: list[str] = []
    args: list[Any] = []
    if owner_id is not None:
        terms.append("d.owner_id = ?")
        args.append(owner_id)
    if node is not None:
        terms.append("q.node = ?")
        args.append(node)
    return (" WHERE " + " AND ".join(terms) if terms else ""), tuple(args)


def age(oldest: int | None, now: datetime | None = None) -> str:
    """'3d 4h', '25m', '' — how long the oldest message has waited."""
    if oldest is None:
        return ""
    seconds = max(0, int((now or datetime.now(timezone.utc)).timestamp()) - oldest)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


# -- flushing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlushResult:
    domain: str
    ok: bool
    detail: str


async def flush_site(cfg: Config, domain: str) -> FlushResult:
    """``postqueue -s DOMAIN``. Never raises for Postfix's answer; bad input raises InvalidInput."""
    name = names.domain(domain, min_labels=1)
    try:
        code, stderr = await _run(command(cfg, "-s", name), cfg.queue.timeout)
    except QueueUnavailable as exc:
        return FlushResult(name, False, str(exc))
    if code == 0:
        return FlushResult(name, True, "flush requested")
    return FlushResult(name, False, _failure(f"postqueue -s {name}", code, stderr))


async def flush_all(cfg: Config) -> FlushResult:
    """``postqueue -f``: everything queued, now."""
    code, stderr = await _run(command(cfg, "-f"), cfg.queue.timeout)
    if code != 0:
        raise QueueUnavailable(_failure("postqueue -f", code, stderr))
    return FlushResult("*", True, "flush of the whole queue requested")


async def flush(cfg: Config, domains: Iterable[str], concurrency: int = 4) -> list[FlushResult]:
    """Flush several domains, a few at a time (each is a short subprocess)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> FlushResult:
        async with gate:
            try:
                result = await flush_site(cfg, name)
            except MrodError as exc:   # a name Postfix could queue but not a domain: [192.0.2.1]
                result = FlushResult(name, False, str(exc))
        (log.info if result.ok else log.warning)("flush %s: %s", name, result.detail)
        return result

    return list(await asyncio.gather(*(one(n) for n in sorted(set(domains)))))


async def flush_rows(cfg: Config, rows: dict[int, str]) -> list[FlushResult]:
    """Flush mrod domain rows (id -> name): every recipient domain with mail queued for them —
    subdomains included — as the queue shows it now; when the queue cannot be read, the rows'
    own names (Postfix's flush service knows what it deferred for each)."""
    if not rows:
        return []
    try:
        report = await read(cfg)
        targets = {d for domain_id in rows for d in report.domains_of(domain_id)}
    except QueueUnavailable as exc:
        log.warning("cannot read the queue (%s); flushing the domains by name", exc)
        targets = set(rows.values())
    return await flush(cfg, targets)


async def _run(argv: list[str], timeout: float) -> tuple[int, bytes]:
    proc = await _spawn(argv)
    try:
        async with asyncio.timeout(timeout):
            _, stderr = await proc.communicate()
    except TimeoutError:
        await _kill(proc)
        raise QueueUnavailable(f"{' '.join(argv)} did not finish within {timeout:g}s") from None
    return proc.returncode or 0, stderr[:STDERR_LIMIT]


async def stat_for(conn: aiosqlite.Connection, domain_id: int, node: str) -> dict[str, Any] | None:
    """One domain's figures from the node's last reading (None: nothing queued for it then)."""
    async with conn.execute("SELECT messages, bytes, oldest, last_reason, updated_at FROM queue_stat"
                            " WHERE node = ? AND domain_id = ?", (node, domain_id)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return dict(zip(("messages", "bytes", "oldest", "last_reason", "updated_at"), row, strict=True)) | {
        "age": age(row[2]), "oldest_at": arrived(row[2])}


async def totals(conn: aiosqlite.Connection, *, owner_id: int | None = None, node: str | None = None
                 ) -> dict[str, Any]:
    """The whole reading in one row: messages, bytes, domains with mail, the oldest message's
    arrival (and the domain it waits for), when it was read; one node's, or every node's."""
    where, args = _filters(owner_id, node)
    async with conn.execute(
        "SELECT coalesce(sum(q.messages), 0), coalesce(sum(q.bytes), 0), count(*), min(q.oldest),"
        f" max(q.updated_at) FROM queue_stat q JOIN domain d ON d.id = q.domain_id{where}", args) as cur:
        row = await cur.fetchone()
    messages, size, domains, oldest, updated_at = row if row else (0, 0, 0, None, None)
    oldest_domain = None
    if oldest is not None:
        extra = (where + " AND" if where else " WHERE") + " q.oldest = ?"
        async with conn.execute("SELECT d.name FROM queue_stat q JOIN domain d ON d.id = q.domain_id"
                                f"{extra} ORDER BY d.name LIMIT 1", (*args, oldest)) as cur:
            found = await cur.fetchone()
        oldest_domain = found[0] if found else None
    return {"messages": messages, "bytes": size, "domains": domains, "oldest": oldest, "age": age(oldest),
            "oldest_at": arrived(oldest),
            "oldest_domain": oldest_domain, "updated_at": updated_at}


def arrived(oldest: int | None) -> str | None:
    """A queue arrival time (epoch seconds, as postqueue -j gives it) as a stored timestamp."""
    return None if oldest is None else db.stamp(datetime.fromtimestamp(oldest, timezone.utc))
