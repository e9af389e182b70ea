"""A few aiosqlite writer connections shared by the panel's requests.

One connection cannot serve concurrent requests: a transaction of one request would take in
the statements of another. Each request borrows a connection for its whole life (lazily, on
first use) and gives it back at the end; WAL lets the readers run side by side, and writers
queue on SQLite's lock (BEGIN IMMEDIATE + busy timeout, waited in aiosqlite's thread).

A slot may hold no connection (None): a shared PostgreSQL that was unreachable when the panel
started, or a session the server dropped. Such a slot connects when it is next borrowed (and
the first connection upgrades the schema, as ``open`` does); until the database answers, the
request gets DatabaseNotReady — a 503 page — and the panel itself keeps running. A server
that stops answering (hung, partitioned) fails the request's statement after ``[database]
answer_timeout`` (pgconn closes the session; its slot reconnects), so a request is answered
503 within that deadline rather than held for the kernel's ~15 minutes.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseUnreachable

log = logging.getLogger("mrod.admin")

CONN = web.RequestKey("conn", Connection)


class Pool:
    def __init__(self, where: db.Where, size: int = 4) -> None:
        self.target = Target.of(where)   # the SQLite file or the PostgreSQL URL
        self.size = size
        self._idle: asyncio.Queue[Connection | None] = asyncio.Queue()
        self._all: list[Connection] = []
        self._migrated = False

    async def open(self) -> None:
        try:
            first = await db.connect(self.target, create=True)
        except DatabaseUnreachable as exc:
            log.warning("%s; the panel answers 503 until it is back", exc)
            for _ in range(self.size):
                self._idle.put_nowait(None)
            return
        self._all.append(first)
        await db.migrate(first)
        self._migrated = True
        for _ in range(self.size - 1):
            self._all.append(await db.connect(self.target))
        for conn in self._all:
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()

    async def acquire(self) -> Connection:
        conn = await self._idle.get()
        if conn is None or conn.closed:      # none yet, or a session the server dropped (or timed out)
            try:
                fresh = await db.connect(self.target)
                if not self._migrated:
                    await db.migrate(fresh)
                    self._migrated = True
            except BaseException:
                self._idle.put_nowait(conn)     # keep the slot: the next request tries again
                raise
            if conn is None:
                self._all.append(fresh)
            else:
                self._all[self._all.index(conn)] = fresh
            conn = fresh
        return conn

    async def release(self, conn: Connection) -> None:
        if conn.closed:
            self._idle.put_nowait(conn)         # replaced on its next acquire
            return
        if conn.in_transaction:     # a handler died inside a transaction: never lend it on
            await conn.execute("ROLLBACK")
        self._idle.put_nowait(conn)


async def conn(request: web.Request) -> Connection:
    """This request's connection (borrowed on first use, returned by ``middleware``)."""
    if CONN not in request:
        from mrod.admin.keys import POOL
        request[CONN] = await request.app[POOL].acquire()
    return request[CONN]


async def release(request: web.Request) -> None:
    """Give the connection back early (before slow network work such as a relay probe)."""
    if CONN in request:
        from mrod.admin.keys import POOL
        await request.app[POOL].release(request.pop(CONN))


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        await release(request)
