"""Running Postfix's ``postsuper`` on chosen messages: ids in, result out.

The ids go on stdin (``postsuper -h -``): a command line has a length limit, a queue may hold a
million ids, and stdin keeps them out of the process list. ``postsuper`` needs root (or the
mail system owner); it says what it did on stderr ("postsuper: Placed on hold: 2 messages"),
which becomes the result's count. An id that is no longer queued is skipped by Postfix without
an error: the count says how many it acted on.

``wake_pickup`` follows a requeue: ``postsuper -r`` moves the message to the maildrop queue,
which the pickup service otherwise scans only once a minute (``postkick public pickup W``, the
program beside ``postsuper``).

``kick`` asks Postfix to act now on messages it otherwise reaches at its next queue scan (a
released or expired message waits up to maximal_backoff_time): ``postqueue -i ID``, one run per
id, a few at a time.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from dataclasses import dataclass
from typing import Iterable

from mrod.infra.config import Config
from mrod.infra.enums import QueueAction
from mrod.infra.errors import InvalidInput
from mrod.operations import postqueue
from mrod.operations.postqueue import QueueUnavailable

FLAGS = {QueueAction.HOLD: "-h", QueueAction.RELEASE: "-H", QueueAction.REQUEUE: "-r",
         QueueAction.DELETE: "-d", QueueAction.EXPIRE: "-e"}
# Short ids are hex, long ids (enable_long_queue_ids) base-52 letters and digits.
QUEUE_ID = re.compile(r"[0-9A-Za-z]{5,40}")
_DONE = re.compile(r"postsuper: [^:]+: (\d+) messages?")


@dataclass(frozen=True)
class Result:
    action: str
    asked: int          # ids given
    done: int           # messages Postfix says it acted on
    detail: str


def queue_id(text: str) -> str:
    value = text.strip()
    if not QUEUE_ID.fullmatch(value):
        raise InvalidInput("queue id", f"{text!r} is not a Postfix queue id (letters and digits)")
    return value


def command(cfg: Config, *args: str) -> list[str]:
    """``[postfix] postsuper`` split as a shell would (``sudo -n /usr/sbin/postsuper`` for an mrod
    that does not run as root: postsuper refuses anyone else), then ``-c DIR`` and ``args``."""
    pf = cfg.postfix
    return [*shlex.split(pf.postsuper), *(["-c", pf.config_dir] if pf.config_dir else []), *args]


def sibling(cfg: Config, program: str) -> str:
    """A Postfix program installed beside postsuper (postkick, postconf: neither needs root)."""
    folder = os.path.dirname(shlex.split(cfg.postfix.postsuper)[-1])
    return os.path.join(folder, program) if folder else program


async def act(cfg: Config, action: str, ids: Iterable[str]) -> Result:
    """``postsuper FLAG -`` with the ids on stdin. Raises QueueUnavailable when postsuper cannot
    run or fails; InvalidInput for an id that is not one."""
    flag = FLAGS[QueueAction(action)]
    wanted = list(dict.fromkeys(queue_id(i) for i in ids))
    if not wanted:
        return Result(action, 0, 0, "no messages")
    argv = command(cfg, flag, "-")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise QueueUnavailable(f"{argv[0]} not found: install Postfix or set [postfix] postsuper") from None
    except PermissionError:
        raise QueueUnavailable(f"{argv[0]} cannot be run (permission denied)") from None
    try:
        async with asyncio.timeout(cfg.queue.timeout):
            _, stderr = await proc.communicate("".join(f"{i}\n" for i in wanted).encode())
    except TimeoutError:
        await postqueue.kill(proc)
        raise QueueUnavailable(f"postsuper {flag} did not finish within {cfg.queue.timeout:g}s") from None
    text = stderr[:postqueue.STDERR_LIMIT]
    if proc.returncode:
        raise QueueUnavailable(postqueue.failure(f"postsuper {flag}", proc.returncode, text))
    done = sum(int(n) for n in _DONE.findall(text.decode("utf-8", "replace")))
    return Result(action, len(wanted), done, f"{done} of {len(wanted)} message(s)")


async def kick(cfg: Config, ids: Iterable[str], concurrency: int = 4) -> list[str]:
    """``postqueue -i ID`` for each id: deliver (or bounce) now. Returns the failures' sentences
    (a message already delivered is not one: postqueue accepts any id)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(qid: str) -> str | None:
        async with gate:
            try:
                code, stderr = await postqueue.run(postqueue.command(cfg, "-i", qid), cfg.queue.timeout)
            except QueueUnavailable as exc:
                return str(exc)
        return None if code == 0 else postqueue.failure(f"postqueue -i {qid}", code, stderr)

    results = await asyncio.gather(*(one(queue_id(i)) for i in dict.fromkeys(ids)))
    return [r for r in results if r]


async def wake_pickup(cfg: Config) -> str | None:
    """``postkick [-c DIR] public pickup W``: take requeued mail now. The failure's sentence, or None."""
    argv = [sibling(cfg, "postkick"),
            *(["-c", cfg.postfix.config_dir] if cfg.postfix.config_dir else []), "public", "pickup", "W"]
    try:
        code, stderr = await postqueue.run(argv, cfg.queue.timeout)
    except QueueUnavailable as exc:
        return str(exc)
    return None if code == 0 else postqueue.failure("postkick public pickup W", code, stderr)


async def release(cfg: Config, ids: Iterable[str]) -> Result:
    """Give held mail back and deliver it now: ``-H`` only moves it to the deferred queue, where
    Postfix would look at it at its next queue scan (up to maximal_backoff_time away, with the
    primary's destination still marked dead from the outage); ``postqueue -i`` schedules each
    at once. Postfix does not expire mail while it is on hold."""
    wanted = list(ids)
    done = await act(cfg, QueueAction.RELEASE, wanted)
    if done.done:
        await kick(cfg, wanted)
    return done
