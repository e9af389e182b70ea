"""``postqueue -j`` as a stream of parsed messages handed to a consumer: the per-domain reading
(queueread) and the jobs and views that look at messages one by one (queuelist, retention,
queuemessages).

The event loop only moves bytes; parsing and the consumer run on one worker thread per reading
(the consumer may ask the route store, which waits on a database — see queueread). Nothing
here keeps messages: memory is the consumer's business and a chunk's worth of lines.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from mrod.infra.config import Config
from mrod.operations import postqueue
from mrod.operations.postqueue import QueueUnavailable
from mrod.operations.queueparse import QueuedMessage, QueueParser

T = TypeVar("T")
Consume = Callable[[list[QueuedMessage]], None]


async def stream(cfg: Config, consume: Consume, *, setup: Callable[[], Callable[[], None]] | None = None
                 ) -> QueueParser:
    """Every queued message, in postqueue's order, through ``consume`` (on the worker thread).
    ``setup`` runs first on that thread and returns what closes it (e.g. a route store, which
    must close on the thread that opened it). Returns the parser (its bad_lines). Raises
    QueueUnavailable."""
    parser = QueueParser(cfg.queue.max_line_bytes)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mrod-queue-stream")
    closers: list[Callable[[], None]] = []

    async def on_worker(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)

    def feed(chunk: bytes) -> None:
        consume(parser.feed(chunk))

    try:
        if setup is not None:
            closers.append(await on_worker(setup))
        proc = await postqueue.spawn(postqueue.command(cfg, "-j"))
        stderr_task = asyncio.ensure_future(postqueue.read_limited(proc.stderr))
        try:
            async with asyncio.timeout(cfg.queue.timeout):
                assert proc.stdout is not None
                while chunk := await proc.stdout.read(postqueue.CHUNK):
                    await on_worker(feed, chunk)
                await on_worker(lambda: consume(parser.close()))
                stderr = await stderr_task
                code = await proc.wait()
        except TimeoutError:
            await postqueue.kill(proc)
            raise QueueUnavailable(f"postqueue -j did not finish within {cfg.queue.timeout:g}s "
                                   "([queue] timeout)") from None
        finally:
            stderr_task.cancel()
            if proc.returncode is None:
                await postqueue.kill(proc)
    finally:
        for close in closers:
            worker.submit(close)
        worker.shutdown(wait=False)
    if code != 0:
        raise QueueUnavailable(postqueue.failure("postqueue -j", code, stderr))
    return parser
