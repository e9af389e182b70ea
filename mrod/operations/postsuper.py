"""Running Postfix's ``postsuper`` on messages by queue id: hold (-h), release (-H), requeue (-r).

Queue ids go on standard input (``postsuper -h -``), so any number fits in one run. postsuper
reports what it did on stderr ("postsuper: Placed on hold: 3 messages"); a queue id that is
gone by then (delivered meanwhile) is no error. postsuper needs root, as Postfix's queue does.

Giving held mail back (``release``): ``-H`` only moves it to the deferred queue, where
Postfix would look at it at its next queue scan (up to maximal_backoff_time away, and with the
primary's destination still marked dead from the outage): so each message is then scheduled
with ``postqueue -i ID`` (the flush service: now, and the dead mark is lifted). ``-r`` would
reset its lifetime (postsuper(1) advises it after a long hold) but lands in the maildrop
queue, which pickup reads only every minute unless poked by a program mrod may not run.
Postfix does not expire mail while it is on hold; released, a message is judged by its first
arrival only if a delivery fails again (then it may bounce as expired at once).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
from dataclasses import dataclass

from mrod.infra.config import Config
from mrod.operations import postqueue
from mrod.operations.postqueue import QueueUnavailable

ACTIONS = {"hold": "-h", "release": "-H"}
RELEASE_CONCURRENCY = 8
_COUNT = re.compile(r"(\d+) messages?")
_QUEUE_ID = re.compile(r"^[0-9A-Za-z]{5,32}$")


@dataclass(frozen=True)
class Done:
    action: str
    asked: int
    done: int          # as postsuper reported it (messages found and acted on)


def command(cfg: Config, flag: str) -> list[str]:
    """[postfix] postsuper (a command line: root only, so "sudo -n /usr/sbin/postsuper" for a
    service user) with ``-c DIR`` when set, the flag, and ``-``: ids on standard input."""
    argv = shlex.split(cfg.postfix.postsuper) or ["postsuper"]
    if argv == ["postsuper"]:
        argv = [shutil.which("postsuper") or "/usr/sbin/postsuper"]
    return [*argv, *(["-c", cfg.postfix.config_dir] if cfg.postfix.config_dir else []), flag, "-"]


async def act(cfg: Config, action: str, queue_ids: list[str]) -> Done:
    """``postsuper FLAG -`` on these ids. Raises QueueUnavailable when postsuper fails."""
    ids = [q for q in queue_ids if _QUEUE_ID.match(q)]
    if not ids:
        return Done(action, 0, 0)
    argv = command(cfg, ACTIONS[action])
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise QueueUnavailable(f"{argv[0]} cannot be run ({exc.strerror}): install Postfix, run as root") from None
    try:
        async with asyncio.timeout(cfg.queue.timeout):
            _, stderr = await proc.communicate("".join(q + "\n" for q in ids).encode())
    except TimeoutError:
        await postqueue.kill(proc)
        raise QueueUnavailable(f"postsuper {ACTIONS[action]} did not finish within {cfg.queue.timeout:g}s") from None
    if proc.returncode:
        raise QueueUnavailable(postqueue.failure(f"postsuper {ACTIONS[action]}", proc.returncode, stderr))
    found = _COUNT.findall(stderr.decode("utf-8", "replace"))
    return Done(action, len(ids), sum(int(n) for n in found))


async def deliver_now(cfg: Config, queue_ids: list[str]) -> int:
    """``postqueue -i ID`` for each (a few at a time): how many were scheduled."""
    gate = asyncio.Semaphore(RELEASE_CONCURRENCY)

    async def one(queue_id: str) -> bool:
        async with gate:
            code, _ = await postqueue.run(postqueue.command(cfg, "-i", queue_id), cfg.queue.timeout)
            return code == 0

    ids = [q for q in queue_ids if _QUEUE_ID.match(q)]
    return sum(await asyncio.gather(*(one(q) for q in ids)))


async def release(cfg: Config, queue_ids: list[str]) -> Done:
    """Release from hold and deliver now (see the module's docstring)."""
    done = await act(cfg, "release", queue_ids)
    if done.done:
        await deliver_now(cfg, queue_ids)
    return done
