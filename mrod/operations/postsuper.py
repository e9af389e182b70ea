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

``[postfix] postsuper = "unix:/run/mrod-postsuper.sock"`` (the Debian package's setting): instead
of running postsuper, ``act`` asks mrod's root-side helper (mrod.operations.postsuperd, started
per connection by systemd's mrod-postsuper.socket) over that socket, in the line protocol of
mrod.operations.postsuperwire. postkick and postqueue need no root and still run here.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from dataclasses import dataclass
from typing import Iterable

from mrod.infra.config import Config
from mrod.infra.enums import QueueAction
from mrod.infra.errors import InvalidInput
from mrod.operations import postqueue
from mrod.operations import postsuperwire as wire
from mrod.operations.postqueue import QueueUnavailable

FLAGS = wire.FLAGS
QUEUE_ID = wire.QUEUE_ID
HELPER = "unix:"
HELPER_UNIT = "mrod-postsuper.socket"


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


def helper_socket(cfg: Config) -> str | None:
    """The helper's socket path when ``[postfix] postsuper`` is ``unix:PATH``, else None."""
    value = cfg.postfix.postsuper
    return value[len(HELPER):] if value.startswith(HELPER) else None


def sibling(cfg: Config, program: str) -> str:
    """A Postfix program installed beside postsuper (postkick, postconf: neither needs root).
    With the helper there is no postsuper path to go by: beside postqueue, else /usr/sbin's
    (the CLI of an operator whose PATH lacks /usr/sbin), else found on PATH."""
    if helper_socket(cfg) is None:
        folder = os.path.dirname(shlex.split(cfg.postfix.postsuper)[-1])
    else:
        folder = os.path.dirname(shlex.split(cfg.postfix.postqueue)[-1])
        if not folder and os.path.exists(os.path.join("/usr/sbin", program)):
            folder = "/usr/sbin"
    return os.path.join(folder, program) if folder else program


async def act(cfg: Config, action: str, ids: Iterable[str]) -> Result:
    """``postsuper FLAG -`` with the ids on stdin. Raises QueueUnavailable when postsuper cannot
    run or fails; InvalidInput for an id that is not one."""
    flag = FLAGS[QueueAction(action)]
    wanted = list(dict.fromkeys(queue_id(i) for i in ids))
    if not wanted:
        return Result(action, 0, 0, "no messages")
    if (path := helper_socket(cfg)) is not None:
        # In batches the helper accepts (a retention pass may expire more at once).
        done = 0
        for start in range(0, len(wanted), wire.MAX_IDS):
            batch = tuple(wanted[start:start + wire.MAX_IDS])
            done += await _ask_helper(cfg, path, wire.Request(QueueAction(action), batch, cfg.postfix.config_dir))
    else:
        done = await _run(cfg, flag, wanted)
    return Result(action, len(wanted), done, f"{done} of {len(wanted)} message(s)")


async def _run(cfg: Config, flag: str, wanted: list[str]) -> int:
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
    return wire.done_count(text.decode("utf-8", "replace"))


async def _ask_helper(cfg: Config, path: str, request: wire.Request) -> int:
    """One request to the root-side helper; its count, or QueueUnavailable with a one-line reason."""
    try:
        async with asyncio.timeout(cfg.queue.timeout):
            reader, writer = await asyncio.open_unix_connection(path)
            try:
                writer.write(wire.encode_request(request))
                await writer.drain()
                reply = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        raise QueueUnavailable(f"the postsuper helper at {path} did not answer within {cfg.queue.timeout:g}s") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise QueueUnavailable(f"no postsuper helper at {path}: start it "
                               f"(systemctl enable --now {HELPER_UNIT})") from None
    except PermissionError:
        raise QueueUnavailable(f"the postsuper helper at {path} refused mrod's user (permission denied: "
                               f"its socket is for group mrod, {HELPER_UNIT})") from None
    except OSError as exc:
        raise QueueUnavailable(f"the postsuper helper at {path}: {exc.strerror or exc}") from None
    try:
        return wire.decode_reply(reply)
    except wire.ProtocolError as exc:
        raise QueueUnavailable(f"postsuper helper: {exc}") from None


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
