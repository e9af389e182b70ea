"""lookupd's routing snapshot on PostgreSQL: fed by LISTEN/NOTIFY and the change
journal, kept on local disk, answered from when the database is gone.

A sync thread owns the database connection: it LISTENs on ``mrod_change`` (0008_notify: a
commit that wrote journal rows notifies), reads the journal rows it has not seen and the rows
they name, and posts them to an inbox that the event loop drains between two lookups (one
deque check per lookup): memory is only changed on the loop, so a lookup never sees a domain
half-replaced. It catches up every ``POLL`` seconds even without a notification, and after a
reconnect from where it was (the journal by seq), not by reloading everything.

seq values are not committed in seq order on PostgreSQL (an identity is taken at insert, the
commit comes later) and a rollback leaves a hole, so "the next row must be position + 1" (the
SQLite reader's gap rule) does not hold. The cursor keeps the highest seq seen and the seqs
below it that it has not seen ("gaps"), and asks each time for the rows after the highest plus
any gap that has committed since: a row committed late is applied when it appears; a gap is
given up after ``GAP_WAIT`` seconds (a rolled-back insert never appears). mrod's own writers
take one advisory lock per writing transaction (pgconn's BEGIN IMMEDIATE), so among them seq
order is commit order and gaps come from rollbacks; the wait covers writers outside mrod whose
transaction stays open less than a minute after writing the journal. (Re-reading a fixed
window of seqs cost 10 ms per change at 1,000 rows; pg_current_xact_id/xid8 would order by
commit exactly but needs a column and a snapshot comparison per read; a reload on every gap
would reload after every rolled-back write.)

When the database is unreachable the snapshot stays (never NOTFOUND because of an outage);
with no snapshot at all lookups answer TEMP. The snapshot is written to ``cache`` (JSON,
atomically, at most every ``PERSIST_EVERY`` seconds after a change and at shutdown), with its
journal cursor and the time of the last sync, so a node restarted during an outage answers
from it and, once the database is back, catches up from the journal. ``staleness()`` is the
number of seconds since the last successful sync; the sync thread also writes it, with whether
the database is reachable, to a small status file (lookupd/syncstatuswriter.py) that ``mrod health``
and the panel read without the database.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import psycopg

from mrod.answers import snapshotfile, snapshotjournal, snapshotsql
from mrod.answers.snapshot import RouteSnapshot
from mrod.answers.snapshotjournal import Pending, read_changes
from mrod.infra import journal
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady
from mrod.infra.files import replace_atomically
from mrod.infra.pgconn import reason
from mrod.infra.pgread import PgSyncConnection
from mrod.lookupd.syncstatuswriter import SyncReporter

log = logging.getLogger("mrod.lookupd")

CHANNEL = "mrod_change"
WINDOW = 1000         # at a load: the seqs behind the newest that may still commit
GAP_WAIT = 60.0       # seconds a missing seq is looked for again (a commit that late is missed)
MAX_CHANGES = 2000    # more new rows at once: reload everything
POLL = 2.0            # seconds: catch up even without a notification
RETRY = 1.0           # seconds between connection attempts while the database is gone
PERSIST_EVERY = 5.0   # seconds: at most one snapshot file write per this
LIVE_WITHIN = 5 * POLL   # seconds since the last sync: the snapshot still follows the database


class JournalCursor:
    """Which journal rows a snapshot includes: the highest seq seen, and the seqs below it not
    seen yet ("gaps": a transaction still open, or a rolled-back insert), each with the time it
    was first missed; a gap is looked for again until it is ``GAP_WAIT`` seconds old.

    ``mark`` is what the row at ``high`` said (entity, key): a journal whose row at that seq is
    gone or says something else is not the one this snapshot followed — a database restored
    from a backup, or a failover to a standby that had not received the last commits and has
    since handed out the same seqs to other changes — and the reader reloads."""

    def __init__(self, high: int = 0, gaps: Iterable[int] = (), mark: tuple[str, str | None] | None = None) -> None:
        self.high = high
        self.mark = mark
        now = time.monotonic()
        self.gaps = {int(s): now for s in gaps}

    def copy(self) -> JournalCursor:
        twin = JournalCursor(self.high, mark=self.mark)
        twin.gaps = dict(self.gaps)
        return twin

    @classmethod
    def at(cls, conn: PgSyncConnection) -> JournalCursor:
        """The journal as the current transaction sees it (read with the snapshot): the seqs
        missing just behind the newest may belong to transactions that commit later."""
        rows = {int(r[0]): (r[1], r[2]) for r in conn.execute(
            "SELECT seq, entity, key FROM change WHERE seq > (SELECT coalesce(max(seq), 0) FROM change) - ?",
            (WINDOW,))}
        high = max(rows, default=0)
        return cls(high, (s for s in range(max(1, high - WINDOW + 1), high) if s not in rows), rows.get(high))

    def fresh(self, conn: PgSyncConnection, limit: int) -> list[journal.Change] | None:
        """The rows not seen yet, in seq order, or None when the reader must reload: an 'all'
        row, more than ``limit`` new rows, rows pruned past the cursor, or a journal that ends
        before it (an older copy of the database restored)."""
        now = time.monotonic()
        self.gaps = {s: t for s, t in self.gaps.items() if now - t < GAP_WAIT}
        # One round trip: the newest seen row (still there?), the rows after it, the gaps that
        # have committed since; each with the oldest seq still kept.
        rows = conn.execute("SELECT seq, entity, key, (SELECT min(seq) FROM change) FROM change"
                            " WHERE seq >= ? OR seq = ANY(?) ORDER BY seq LIMIT ?",
                            (self.high, sorted(self.gaps), limit + 2)).fetchall()
        if len(rows) > limit + 1:
            return None
        if self.high:
            at_high = next((r for r in rows if r[0] == self.high), None)
            if at_high is None or rows[0][3] > self.high:
                return None      # restored from an older copy, or pruned past the cursor
            if self.mark is not None and (at_high[1], at_high[2]) != self.mark:
                return None      # another journal under the same seqs (a lossy failover)
        new = [journal.Change(int(s), e, k) for s, e, k, _ in rows if s > self.high or s in self.gaps]
        if len(new) > limit or any(c.entity == journal.ALL for c in new):
            return None
        if new:
            found = {c.seq for c in new}
            for seq in found:
                self.gaps.pop(seq, None)
            newest = max(found)
            for seq in range(self.high + 1, newest):
                if seq not in found:
                    self.gaps[seq] = now
            if newest > self.high:
                self.high = newest
                self.mark = (new[-1].entity, new[-1].key)     # new is in seq order
        return new


class PgStoreHolder:
    """``get()`` per lookup: the snapshot (DatabaseNotReady while there is none: TEMP)."""

    def __init__(self, target: Target, cache: Path | None = None, status: Path | None = None,
                 node: str = "") -> None:
        self.target = target
        self.cache = cache
        # The sync status file (None: not written): the sync thread's after each sync.
        self.status = SyncReporter(status, node, target.describe()) if status is not None else None
        self.synced_at: float | None = None   # wall-clock time of the last sync with the database
        self.connected = False
        self._snapshot: RouteSnapshot | None = None
        self._inbox: collections.deque[tuple[Any, ...]] = collections.deque()
        self._cursor: JournalCursor | None = None    # the sync thread's (restored from the file)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # the cursor of what the loop installed: high, gaps, mark
        self._installed: tuple[int, list[int], tuple[str, str | None] | None] = (0, [], None)
        self._dirty = False
        self._persisted_at = 0.0
        self._attempt = 0.0
        self._persist_lock = threading.Lock()      # one file writer at a time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._restore()

    # -- per lookup (event loop) ----------------------------------------------------------------

    def get(self) -> RouteSnapshot:
        if self._inbox:
            self._drain()
        if self._thread is None:
            self.start()
        snap = self._snapshot
        if snap is None:
            raise DatabaseNotReady(f"no routing snapshot yet from {self.target.describe()}")
        return snap

    @property
    def snapshot(self) -> RouteSnapshot | None:
        return self._snapshot

    def staleness(self) -> float | None:
        """Seconds since the last sync with the database (None: never synced)."""
        return None if self.synced_at is None else max(0.0, time.time() - self.synced_at)

    @property
    def live(self) -> bool:
        """Connected, and synced within a few polls (a hung server keeps a connection open)."""
        age = self.staleness()
        return self.connected and age is not None and age < LIVE_WITHIN

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Follow the database from now on. With the event loop that answers lookups, changes
        are installed (and the file written) as they come, not only at the next lookup."""
        if loop is not None:
            self._loop = loop
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mrod-pgsync", daemon=True)
            self._thread.start()

    @contextmanager
    def waiting(self, deadline: float) -> Iterator[RouteSnapshot]:
        """The snapshot: lookups never wait for PostgreSQL."""
        yield self.get()

    async def settle(self, timeout: float) -> None:
        """Start following the database and wait (bounded) for a first snapshot, so the first
        lookups are not TEMP for want of one."""
        self.start(asyncio.get_running_loop())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get()
                return
            except DatabaseNotReady:
                await asyncio.sleep(0.05)

    def close(self) -> None:
        """After a fault: nothing to drop (lookups never touch the database; the snapshot,
        listed recipients included, is the answer)."""

    def shutdown(self) -> None:
        self._stop.set()
        self._loop = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inbox:
            self._drain()
        if self.cache is not None:      # also when nothing changed: the time of the last sync did
            self._persist(self._export())
        self.close()
        if self._thread is not None:
            self._thread.join(timeout=RETRY + 3)
        self._report(running=False)

    def _report(self, *, running: bool = True) -> None:
        if self.status is not None and (not running or not self._stop.is_set()):
            snap = self._snapshot
            self.status.report(self.synced_at, self.connected and running, None if snap is None else len(snap),
                               running=running)

    def _drain(self) -> None:
        while self._inbox:
            item = self._inbox.popleft()
            kind, thing, cursor = item
            if kind == "load":
                self._snapshot = thing
            elif self._snapshot is not None:
                snapshotjournal.install(self._snapshot, thing)
            self._installed = cursor
            self._dirty = True
        if self.cache is None or not self._dirty:
            return
        due = self._persisted_at + PERSIST_EVERY - time.monotonic()
        if due <= 0:
            state = self._export()
            threading.Thread(target=self._persist, args=(state,), name="mrod-snapshot-file", daemon=True).start()
        elif self._loop is not None and self._timer is None:
            self._timer = self._loop.call_later(due, self._persist_due)

    def _persist_due(self) -> None:
        self._timer = None
        self._drain()

    # -- the sync thread ------------------------------------------------------------------------

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except (psycopg.Error, DatabaseNotReady, OSError) as exc:
                if not lost:
                    log.warning("database %s unreachable: answering from the routing snapshot (%s)",
                                self.target.describe(), reason(exc))
                    lost = True
                self._report()      # connected false, and lookupd alive: the file stays current
                self._stop.wait(RETRY)
                continue
            try:
                if lost:
                    log.info("database %s reachable again: catching up from the change journal",
                             self.target.describe())
                lost = False
                self._follow(conn)
            except (psycopg.Error, DatabaseNotReady, OSError) as exc:
                log.warning("lost database %s: answering from the routing snapshot (%s)",
                            self.target.describe(), reason(exc))
                lost = True
            except Exception:   # a bug must not end the sync for good: log it, retry
                log.exception("following database %s failed; retrying", self.target.describe())
                self._stop.wait(RETRY)
            finally:
                self.connected = False
                conn.close()
                if not self._stop.is_set():
                    self._report()

    def _connect(self) -> PgSyncConnection:
        conn = PgSyncConnection.open(self.target, 3, "mrod-lookupd", read_only=False)
        conn.execute(f"LISTEN {CHANNEL}")     # before reading: no commit falls between the two
        return conn

    def _follow(self, conn: PgSyncConnection) -> None:
        raw = conn.raw
        conn.execute("SET default_transaction_read_only = on")
        self.connected = True
        while not self._stop.is_set():
            self._attempt = time.time()     # what is read from now on is as of this time or later
            # On a copy: a connection lost before the rows are read leaves the cursor as it was.
            trial = self._cursor.copy() if self._cursor is not None else None
            changes = trial.fresh(conn, MAX_CHANGES) if trial is not None else None
            if changes is None:
                self._load(conn)
            elif changes:
                assert trial is not None
                pending = read_changes(conn, changes, trial.high, recipients=True)
                self._cursor = trial
                self._post("apply", pending)
            self.synced_at = self._attempt
            self._report()
            for _ in raw.notifies(timeout=POLL, stop_after=1):
                pass

    def _load(self, conn: PgSyncConnection) -> None:
        started = time.monotonic()
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")    # the rows and the cursor of one moment
        try:
            snap = snapshotsql.load(conn, transaction=False, recipients=True)
            cursor = JournalCursor.at(conn)
        finally:
            conn.execute("COMMIT")
        snap.position = cursor.high
        self._cursor = cursor
        self._post("load", snap)
        log.info("routing snapshot loaded from %s: %d domains, %d listed recipients in %.2fs",
                 self.target.describe(), len(snap), snap.recipients_in_memory or 0, time.monotonic() - started)

    def _post(self, kind: str, item: RouteSnapshot | Pending) -> None:
        cursor = self._cursor
        assert cursor is not None
        self.synced_at = self._attempt     # before the loop can install (and write) it
        # With the cursor as of this item: what the file says was seen is what was installed.
        self._inbox.append((kind, item, (cursor.high, sorted(cursor.gaps), cursor.mark)))
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:     # the loop is closed: lookupd is stopping
                pass

    # -- the file on local disk -----------------------------------------------------------------

    def _export(self) -> dict[str, Any] | None:
        self._dirty = False
        self._persisted_at = time.monotonic()
        snap = self._snapshot
        if snap is None:
            return None
        high, gaps, mark = self._installed
        state = snapshotfile.state(snap)
        state.update(synced_at=self.synced_at, database=self.target.describe(),
                     cursor={"high": high, "gaps": gaps, "mark": mark})
        return state

    def _persist(self, state: dict[str, Any] | None) -> None:
        if state is None or self.cache is None:
            return
        with self._persist_lock:
            self._write(state, self.cache)

    def _write(self, state: dict[str, Any], cache: Path) -> None:
        try:
            replace_atomically(cache, lambda fh: json.dump(state, fh, separators=(",", ":")), mode=0o600,
                               durable=True)
        except OSError as exc:
            log.warning("could not write the routing snapshot to %s: %s", cache, exc)

    def _restore(self) -> None:
        if self.cache is None or not self.cache.exists():
            return
        try:
            snap, state = snapshotfile.read_file(self.cache, self.target.describe())
            mark = state["cursor"].get("mark")
            cursor = JournalCursor(int(state["cursor"]["high"]), (int(s) for s in state["cursor"]["gaps"]),
                                   (str(mark[0]), None if mark[1] is None else str(mark[1])) if mark else None)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:   # UnusableFile is a ValueError
            log.warning("routing snapshot file %s not used: %s", self.cache, exc)
            return
        self._snapshot, self._cursor = snap, cursor
        self._installed = (cursor.high, sorted(cursor.gaps), cursor.mark)
        synced = state.get("synced_at")
        self.synced_at = float(synced) if synced is not None else None
        log.info("routing snapshot restored from %s: %d domains (synced %s)", self.cache, len(snap),
                 time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.synced_at)) if self.synced_at else "never")


