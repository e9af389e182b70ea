"""Running Postfix's ``postqueue``: the command line, the subprocess and what its failure means.

Every run is an asyncio subprocess (off the event loop), killed at its timeout; its stderr is
kept to STDERR_LIMIT. Postfix down (``postqueue`` exits 69, "mail system is down"), a missing
binary or a run past ``[queue] timeout`` raise QueueUnavailable with a message for the operator.
"""

from __future__ import annotations

import asyncio

from mrod.infra.config import Config
from mrod.infra.errors import MrodError

STDERR_LIMIT = 64 * 1024
CHUNK = 256 * 1024


class QueueUnavailable(MrodError):
    """Postfix's queue cannot be read or flushed (Postfix down, not installed, too slow)."""


def command(cfg: Config, *args: str) -> list[str]:
    pf = cfg.postfix
    return [pf.postqueue, *(["-c", pf.config_dir] if pf.config_dir else []), *args]


async def spawn(argv: list[str]) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=CHUNK)
    except FileNotFoundError:
        raise QueueUnavailable(f"{argv[0]} not found: install Postfix or set [postfix] postqueue") from None
    except PermissionError:
        raise QueueUnavailable(f"{argv[0]} cannot be run (permission denied)") from None


async def read_limited(stream: asyncio.StreamReader | None) -> bytes:
    """All of a stream read, the first STDERR_LIMIT bytes kept (the child never blocks on a full pipe)."""
    data = bytearray()
    if stream is None:
        return b""
    while chunk := await stream.read(CHUNK):
        if len(data) < STDERR_LIMIT:
            data += chunk[:STDERR_LIMIT - len(data)]
    return bytes(data)


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    await proc.wait()


def failure(what: str, code: int, stderr: bytes) -> str:
    """The operator's sentence for a failed run, from postqueue's last fatal line."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    # "postqueue: fatal: Cannot flush mail queue - mail system is down"
    text = lines[-1].split("fatal: ", 1)[-1] if lines else "no message"
    if any("mail system is down" in ln.lower() for ln in lines):
        return f"{what} failed (exit {code}): Postfix is not running ({text}); start it: `postfix start`"
    return f"{what} failed (exit {code}): {text}"


async def run(argv: list[str], timeout: float) -> tuple[int, bytes]:
    """(exit status, stderr) of a short run; raises QueueUnavailable past ``timeout``."""
    proc = await spawn(argv)
    try:
        async with asyncio.timeout(timeout):
            _, stderr = await proc.communicate()
    except TimeoutError:
        await kill(proc)
        raise QueueUnavailable(f"{' '.join(argv)} did not finish within {timeout:g}s") from None
    return proc.returncode or 0, stderr[:STDERR_LIMIT]
