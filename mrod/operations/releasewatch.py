"""The careful flush's second look: after a returning primary's backlog is given back, the
first real deliveries are read from Postfix's log, and when the primary refuses too many of
them with 5xx the rest of the backlog goes back on hold.

The dry trial (mrod.operations.carefulflush) sees what a primary answers to MAIL FROM and
RCPT TO; a primary whose content filter refuses after DATA passes it. Postfix then delivers
the backlog — at the pace of [flush] concurrency / rate_delay — and logs each outcome by
queue id (the released messages keep theirs). From the log's end as it was just before the
release, every half second, the outcomes of the released ids are read (mrod.operations.
deliveries parses them) until [flush] trial_messages of them are known or [flush]
watch_seconds pass. With [flush] trip_refusals of them (the same share of fewer) refused by the
primary, the domain is held by the breaker and its messages still queued are put on hold.
This limits the damage to the messages delivered before the verdict: with a rate delay of a
second, about trial_messages; without a pace Postfix may deliver the whole backlog first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from mrod.infra.config import Config
from mrod.operations import deliveries, postfixcache

log = logging.getLogger("mrod.flush")

POLL = 0.5
READ_LIMIT = 4 * 1024 * 1024


def log_end(cfg: Config) -> tuple[Path, int] | None:
    """Postfix's log and its size now (None: it cannot be read)."""
    try:
        path = postfixcache.maillog_path(cfg)
        return path, path.stat().st_size
    except OSError:
        return None


def _read_from(path: Path, offset: int) -> tuple[list[deliveries.Outcome], int]:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(READ_LIMIT)
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", "replace").splitlines()
    return [o for o in map(deliveries.parse, lines) if o is not None], offset + end


async def judge(cfg: Config, start: tuple[Path, int], queue_ids: set[str]) -> tuple[int, int, str]:
    """(outcomes known, refused by the primary, the last refusal) of the first trial_messages
    released messages, read from the log within watch_seconds."""
    path, offset = start
    settings = cfg.flush
    wanted = min(settings.trial_messages, len(queue_ids))
    seen: dict[str, bool] = {}
    detail = ""
    deadline = time.monotonic() + settings.watch_seconds
    while len(seen) < wanted and time.monotonic() < deadline:
        try:
            outcomes, offset = await asyncio.to_thread(_read_from, path, offset)
        except OSError as exc:
            log.warning("careful flush: Postfix's log %s cannot be read (%s): the released mail is not watched",
                        path, exc)
            break
        for outcome in outcomes:
            # A message's first final word counts; a plain deferral (4xx) is no verdict yet.
            if outcome.queue_id in queue_ids and outcome.queue_id not in seen and len(seen) < wanted:
                if outcome.refused_by_primary:
                    seen[outcome.queue_id] = True
                    detail = f"to=<{outcome.recipient}>: {outcome.text}"
                elif outcome.status == "sent":
                    seen[outcome.queue_id] = False
        if len(seen) < wanted:
            await asyncio.sleep(POLL)
    return len(seen), sum(seen.values()), detail
