"""The history of import runs (table import_run): counts, errors, duration, who started it.

A successful run's row is written inside the run's own transaction; a failed run's row is
written after the rollback, in a small transaction of its own, so a failure is on record
although it changed nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


from mrod.infra.dbapi import Connection, Row
from mrod.entities import audit
from mrod.entities.audit import Actor
from mrod.infra import db

COUNTS = ("discovered", "added", "updated", "disabled", "deleted", "unchanged", "skipped", "problems")


@dataclass(frozen=True)
class Run:
    id: int
    started_at: str
    finished_at: str
    duration_ms: int
    status: str                 # ok | failed
    actor: str
    origin: str
    remote: str | None
    counts: dict[str, int]
    error: str | None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "started_at": self.started_at, "finished_at": self.finished_at,
                "duration_ms": self.duration_ms, "status": self.status, "actor": self.actor,
                "origin": self.origin, "remote": self.remote, **self.counts, "error": self.error,
                "messages": self.messages}


async def record(
    conn: Connection,
    actor: Actor,
    *,
    started_at: str,
    finished_at: str,
    duration_ms: int,
    counts: dict[str, int],
    messages: list[str],
    error: str | None = None,
) -> int:
    """Write the run's row and its audit entry (inside the caller's transaction)."""
    status = "failed" if error else "ok"
    values = {k: int(counts.get(k, 0)) for k in COUNTS}
    cur = await conn.execute(
        f"INSERT INTO import_run (started_at, finished_at, duration_ms, status, actor, origin, remote,"
        f" {', '.join(COUNTS)}, error, messages) VALUES ({', '.join('?' * (9 + len(COUNTS)))}) RETURNING id",
        (started_at, finished_at, duration_ms, status, actor.name, actor.origin, actor.remote,
         *values.values(), error, json.dumps(messages)),
    )
    run_id = await db.returned_id(cur)
    summary: dict[str, Any] = {"status": status, **values, "duration_ms": duration_ms}
    if error:
        summary["error"] = error
    await audit.record(conn, actor, "import", "bind_import", str(run_id), None, summary)
    return run_id


def _run(row: Row) -> Run:
    return Run(
        id=row["id"], started_at=row["started_at"], finished_at=row["finished_at"],
        duration_ms=row["duration_ms"], status=row["status"], actor=row["actor"], origin=row["origin"],
        remote=row["remote"], counts={k: row[k] for k in COUNTS}, error=row["error"],
        messages=json.loads(row["messages"] or "[]"),
    )


async def recent(conn: Connection, limit: int = 20, offset: int = 0) -> list[Run]:
    """The latest runs, newest first."""
    async with conn.execute("SELECT * FROM import_run ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)) as cur:
        return [_run(r) for r in await cur.fetchall()]

