"""oneshot: the read helper of `mrod lookup`, `mrod domain show` and the panel's "what Postfix
is told" — one read-only store per question, one busy timeout, and off the event loop it never
stalls the loop while a writer holds the database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from mrod.answers import oneshot, routing
from mrod.answers.routestore import RouteStore
from mrod.infra.errors import DatabaseNotReady
from tests.data import seed_file


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    file = tmp_path / "mrod.db"
    await seed_file(file, relays=[{"name": "primary", "host": "mx1.example.net"}],
                    domains=[{"name": "example.com", "relay": "primary"}])
    return file


def test_ask_answers_and_closes(path: Path) -> None:
    stores: list[RouteStore] = []

    def question(store: RouteStore) -> routing.Answer:
        stores.append(store)
        return routing.answer(store, "relay_domains", "example.com")

    answer = oneshot.ask(path, 1.0, question)
    assert answer.status == routing.OK
    with pytest.raises(sqlite3.ProgrammingError):       # closed after the question
        stores[0].conn.execute("SELECT 1")
    with pytest.raises(DatabaseNotReady):
        oneshot.ask(path.with_name("missing.db"), 1.0, lambda s: None)


async def test_a_question_off_the_loop_leaves_the_loop_free(path: Path) -> None:
    gate = threading.Event()
    opened = []

    def question(store: RouteStore) -> routing.Answer:
        opened.append(gate.wait(5))          # set by the loop below: only if the loop is not blocked
        return routing.answer(store, "transport", "joe@example.com")

    task = asyncio.create_task(oneshot.ask_off_loop(path, 1.0, question))
    await asyncio.sleep(0.05)
    gate.set()
    assert (await task).value == "relay:[mx1.example.net]:25" and opened == [True]


async def test_a_busy_database_is_waited_for_up_to_the_deadline(path: Path) -> None:
    # A writer that shuts every reader out (exclusive locking mode, as a long import may).
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA locking_mode = EXCLUSIVE")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE domain SET enabled = 0")
    task = asyncio.create_task(oneshot.ask_off_loop(
        path, 10.0, lambda s: routing.answer(s, "relay_domains", "example.com")))
    ticks = 0
    for _ in range(10):                      # the loop keeps running while the question waits
        await asyncio.sleep(0.02)
        ticks += 1
    assert not task.done() and ticks == 10
    writer.execute("COMMIT")
    writer.close()
    assert (await task).status == routing.NOTFOUND          # the writer's change, once committed
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA locking_mode = EXCLUSIVE")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE domain SET enabled = 1")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await oneshot.ask_off_loop(path, 0.2, lambda s: routing.answer(s, "relay_domains", "example.com"))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
