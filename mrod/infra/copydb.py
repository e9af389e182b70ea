"""``mrod migrate-to``: copy an SQLite installation into an empty PostgreSQL database.

All in one PostgreSQL transaction: the schema (the same migrations ``mrod init`` runs), every
row of every table (parents before children, with COPY), the identity counters moved past
the copied ids, and a row count per table compared with the source before COMMIT. Any
failure — a value PostgreSQL refuses, a name that is unique to SQLite's ASCII-only NOCASE but
not to PostgreSQL's — rolls it all back and leaves the target empty. The source is read in one
read transaction (a consistent snapshot); writes made to it after the copy are not carried
over, so mrod is stopped for the move (docs/cluster.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from mrod.infra.dbapi import Connection
from mrod.infra import db, pgconn, pgschema
from mrod.infra.engine import Target
from mrod.infra.errors import IntegrityViolation, MrodError


class CopyRefused(MrodError):
    """The target is not empty, or the copy failed (nothing was written)."""


@dataclass(frozen=True)
class Copied:
    tables: dict[str, int]
    version: int

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


async def _tables_in_order(source: Connection) -> list[str]:
    """mrod's tables, every table after the tables its foreign keys point to."""
    async with source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name") as cur:
        tables = [r[0] for r in await cur.fetchall()]
    parents: dict[str, set[str]] = {}
    for table in tables:
        async with source.execute(f'PRAGMA foreign_key_list("{table}")') as cur:
            parents[table] = {r[2] for r in await cur.fetchall()} - {table}
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        if not ready:
            raise RuntimeError(f"foreign keys form a cycle among {sorted(set(tables) - set(ordered))}")
        ordered.extend(ready)
    return ordered


async def _require_empty(target: pgconn.Connection) -> None:
    async with target.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " ORDER BY table_name") as cur:
        found = [r[0] for r in await cur.fetchall()]
    if found:
        shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        raise CopyRefused(f"database {target.where} is not empty (tables: {shown}); migrate-to copies into an"
                          " empty database only")


async def copy(source_path: Path, target: Target) -> Copied:
    """Copy the SQLite database at ``source_path`` into the empty PostgreSQL ``target``."""
    pending = [(v, name, db.postgresql_statements(name, sql)) for v, name, sql in db.migrations("postgresql")]
    async with db.opened(source_path) as source:
        conn = await db.connect(target)
        assert isinstance(conn, pgconn.Connection)
        try:
            await _require_empty(conn)
            await source.execute("BEGIN")          # one snapshot of the source
            try:
                tables = await _tables_in_order(source)
                await conn.execute("BEGIN")
                try:
                    await pgschema.apply(conn, pending, db.now())
                    counts = {table: await _copy_table(source, conn, table) for table in tables}
                    await conn.execute("COMMIT")
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
            finally:
                await source.execute("ROLLBACK")
        except (psycopg.Error, IntegrityViolation) as exc:
            raise CopyRefused(f"copy to {target.describe()} failed, nothing was written: "
                              f"{pgconn.reason(exc)}") from None
        finally:
            await conn.close()
    return Copied(counts, db.SCHEMA_VERSION)


async def _copy_table(source: Connection, target: pgconn.Connection, table: str) -> int:
    async with source.execute(f'SELECT * FROM "{table}"') as cur:
        columns = [d[0] for d in cur.description]
        rows = list(await cur.fetchall())
    names = ", ".join(f'"{c}"' for c in columns)
    # The journal's triggers (migration 0005) stay off while rows are copied: the source's
    # journal is copied as it is, and a relay's insert trigger would add rows to it (clashing
    # with the copied seqs). ALTER TABLE in the transaction: a failure rolls it back too.
    await target.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
    async with target.raw.cursor() as pg:
        async with pg.copy(f'COPY "{table}" ({names}) FROM STDIN'.encode()) as feed:
            for row in rows:
                await feed.write_row(tuple(row))
    await target.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
    async with target.execute(f'SELECT count(*) FROM "{table}"') as check:
        counted = await check.fetchone()
    copied = int(counted[0]) if counted else -1
    if copied != len(rows):
        raise CopyRefused(f"table {table}: {len(rows)} rows read but {copied} copied; nothing was written")
    async with target.execute("SELECT attname FROM pg_attribute WHERE attrelid = ?::regclass"
                              " AND attidentity <> ''", (f'"{table}"',)) as cur:
        identity = [r[0] for r in await cur.fetchall()]
    for column in identity:   # the next value the identity hands out follows the copied ones (id, change.seq)
        await target.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),"
                             f' coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)')
    return copied
