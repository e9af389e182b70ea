"""A separate writer process for bench.visibility: it changes the database with mrod's own
code (``mrod.domains.add`` / ``remove``, each its own audited transaction — what the panel and
the CLI run) when told to on stdin, and says when the commit started and returned.

Protocol, one line each way: ``add NAME`` / ``rm NAME`` -> ``done T_BEFORE T_AFTER``
(CLOCK_MONOTONIC nanoseconds, comparable across processes on Linux) or ``error TEXT``.

    .venv/bin/python -m bench.writer DB_PATH
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from mrod.infra import db
from mrod.entities import domains
from mrod.infra.errors import MrodError

from .dataset import ACTOR, RELAY


async def serve(path: Path) -> None:
    loop = asyncio.get_running_loop()
    async with db.opened(path) as conn:
        print("ready", flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            verb, _, name = line.strip().partition(" ")
            before = time.monotonic_ns()
            try:
                if verb == "add":
                    await domains.add(conn, ACTOR, name, relay=RELAY)
                elif verb == "rm":
                    await domains.remove(conn, ACTOR, name)
                else:
                    print(f"error unknown command {verb!r}", flush=True)
                    continue
            except MrodError as exc:
                print(f"error {exc}", flush=True)
                continue
            after = time.monotonic_ns()
            print(f"done {before} {after}", flush=True)


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
