"""What a lookup answers from, kept fresh per lookup for well under a microsecond.

``StoreHolder.get()`` returns, per lookup:
* the in-memory ``RouteSnapshot`` (``snapshot=True``, once loaded) — brought up to date from
  the change journal whenever the commit mark moved (any commit by any process), so a change
  is answered by the very next lookup;
* else the SQL store (read-only SQLite, always current): while the snapshot loads in a
  background thread after start, a replaced file or a bulk import ("reload all"), and for
  databases without the journal (schema older than 0005).

The database file is re-identified (stat: device, inode) only when its directory changed
(EntryWatch); a replaced or removed file closes everything — snapshot included — so no answer
ever comes from a file that is gone: the next open fails (TEMP) or opens the new file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Generic, TypeVar

from mrod.infra.dbapi import SyncConnection
from mrod.answers.routestore import RouteStore
from mrod.answers import snapshotjournal, snapshotsql
from mrod.answers.snapshot import RouteSnapshot
from mrod.infra import db, journal
from mrod.infra.errors import DatabaseNotReady

from mrod.lookupd.freshness import CommitMark, EntryWatch

log = logging.getLogger("mrod.lookupd")

S = TypeVar("S", bound=RouteStore)

MAX_CHANGES = 2000      # more journal rows at once: reload in the background (SQL answers meanwhile)
RETRY_LOAD_AFTER = 30.0


class StoreHolder(Generic[S]):
    def __init__(self, db_path: Path, kind: type[S], snapshot: bool = False) -> None:
        self.db_path = Path(db_path)
        self.kind = kind
        self.use_snapshot = snapshot
        self._watch = EntryWatch(self.db_path)
        self._sql: S | None = None
        self._identity: tuple[int, int] | None = None
        self._mark: CommitMark | None = None
        self._seen: object = None
        self._journal = False                  # the database has the change journal
        self._snapshot: RouteSnapshot | None = None
        self._generation = 0                   # bumped whenever a snapshot in the making is void
        self._loading = False
        self._loaded: tuple[int, RouteSnapshot] | None = None
        self._load_failed: tuple[float, tuple[int, int] | None] = (0.0, None)

    # -- per lookup ---------------------------------------------------------------------------

    def get(self) -> S | RouteSnapshot:
        if self._watch.pending() and self._sql is not None:
            self._recheck_entry()
        sql = self._sql if self._sql is not None else self._open()
        if self._mark is None:     # no snapshot kept: SQL answers are always current
            return sql
        seen = self._mark.read()
        if seen != self._seen:
            self._catch_up(sql)
            self._seen = seen        # only once caught up: a failure retries on the next lookup
        if self._loaded is not None:
            self._install(sql)
        return self._snapshot if self._snapshot is not None else sql

    @property
    def snapshot(self) -> RouteSnapshot | None:
        return self._snapshot

    def close(self) -> None:
        self._generation += 1
        self._snapshot = None
        self._loaded = None
        self._loading = False
        if self._mark is not None:
            self._mark.close()
            self._mark = None
        if self._sql is not None:
            try:
                self._sql.close()
            except sqlite3.Error:
                pass
            self._sql = None
        self._identity = None
        self._seen = None

    def shutdown(self) -> None:
        self.close()
        self._watch.close()

    # -- opening and identity -----------------------------------------------------------------

    def _identity_now(self) -> tuple[int, int]:
        try:
            st = os.stat(self.db_path)
        except FileNotFoundError:
            raise DatabaseNotReady(f"database {self.db_path} does not exist") from None
        return st.st_dev, st.st_ino

    def _recheck_entry(self) -> None:
        try:
            same = self._identity_now() == self._identity
        except DatabaseNotReady:
            same = False
        if not same:
            self.close()
        elif self._mark is not None and self._sql is not None:
            # Something else in the directory changed (the -shm itself?): map it afresh.
            self._mark.close()
            self._mark = CommitMark(self.db_path, self._sql.conn)
            self._seen = None

    def _open(self) -> S:
        identity = self._identity_now()
        store = self.kind.open(self.db_path, busy_timeout_ms=0)
        self._sql, self._identity = store, identity
        self._mark = CommitMark(self.db_path, store.conn) if self.use_snapshot else None
        self._seen = None
        self._journal = False
        return store

    # -- the snapshot -------------------------------------------------------------------------

    def _catch_up(self, sql: S) -> None:
        if not self.use_snapshot:
            return
        if not self._journal:
            self._journal = _has_journal(sql.conn)
            if not self._journal:
                return
        snap = self._snapshot
        if snap is None:
            self._start_load()
            return
        changes = journal.since(sql.conn, snap.position, MAX_CHANGES)
        if changes is None:
            self._drop_snapshot("many changes")
            return
        try:
            if changes:
                snapshotjournal.apply(snap, sql.conn, changes)
            # Safety net: domains some writer inserted without a journal row (one indexed query).
            if not snapshotjournal.unjournaled(snap, sql.conn, MAX_CHANGES):
                self._drop_snapshot("many domains added without a journal row")
        except sqlite3.OperationalError as exc:
            if not db.is_busy(exc):     # busy: apply reads before it changes anything
                self._drop_snapshot("a change could not be applied")
            raise
        except BaseException:
            self._drop_snapshot("a change could not be applied")
            raise

    def _drop_snapshot(self, why: str) -> None:
        log.info("reloading the routing snapshot (%s); answering from the database meanwhile", why)
        self._snapshot = None
        self._generation += 1
        self._loaded = None
        self._loading = False
        self._start_load()

    def _start_load(self) -> None:
        failed_at, failed_on = self._load_failed
        if self._loading or (failed_on == self._identity and time.monotonic() - failed_at < RETRY_LOAD_AFTER):
            return   # a file that failed to load is not retried on every lookup
        self._loading = True
        args = (self._generation, self._identity)
        threading.Thread(target=self._load, args=args, name="mrod-snapshot", daemon=True).start()

    def _load(self, generation: int, identity: tuple[int, int] | None) -> None:
        started = time.monotonic()
        try:
            conn = db.open_readonly(self.db_path, busy_timeout_ms=5000)
            try:
                if self._identity_now() != identity:
                    if generation == self._generation:
                        self._loading = False
                    return     # replaced meanwhile: the holder reopens and loads again
                snap = snapshotsql.load(conn)
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001 - SQL answers go on; retried later
            log.warning("could not load the routing snapshot (answering from the database): %s", exc)
            self._load_failed = (time.monotonic(), identity)
            if generation == self._generation:
                self._loading = False
            return
        log.info("routing snapshot loaded: %d domains in %.2fs", len(snap), time.monotonic() - started)
        self._loaded = (generation, snap)

    def _install(self, sql: S) -> None:
        loaded, self._loaded = self._loaded, None
        if loaded is None or loaded[0] != self._generation:
            return
        self._loading = False
        snap = loaded[1]
        snap.sql = sql
        try:
            changes = journal.since(sql.conn, snap.position, MAX_CHANGES)
            if changes is None:
                self._drop_snapshot("changed while loading")
                return
            if changes:
                snapshotjournal.apply(snap, sql.conn, changes)
            if not snapshotjournal.unjournaled(snap, sql.conn, MAX_CHANGES):
                self._drop_snapshot("many domains added without a journal row")
                return
        except BaseException:
            self._loaded = loaded      # try again on the next lookup (SQL answers meanwhile)
            raise
        self._snapshot = snap


def _has_journal(conn: SyncConnection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'change'").fetchone() is not None
