"""Make this node's Postfix queue agree with the domain holds (mrod.entities.holds).

``apply(cfg)`` — run by the queue job every [queue] interval, and at once by whoever holds or
releases a domain on this node (CLI, panel, API, the careful flush):

* every message of a held domain that is not on hold yet is put on hold (``postsuper -h``) and
  remembered as held by mrod; mail arriving for a held domain is therefore held at the next
  round — until then Postfix delivers it if the primary answers (see docs/operations.md);
* every message mrod held for a domain that is no longer held is given back with
  ``postsuper -H`` and ``postqueue -i`` (delivered now: mrod.operations.postsuper) and forgotten.

Held mail is kept and not delivered, and Postfix does not expire it while it is on hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mrod.entities import holds
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.errors import DatabaseUnreachable
from mrod.operations import postsuper, queuemessages
from mrod.operations.postqueue import QueueUnavailable

log = logging.getLogger("mrod.hold")


@dataclass(frozen=True)
class Applied:
    held: int
    released: int


async def hold_messages(cfg: Config, messages: list[queuemessages.Message], domain_ids: dict[str, int]) -> int:
    """Put these messages on hold and remember them; the number postsuper held."""
    todo = [m for m in messages if m.queue_name != "hold"]
    if not todo:
        return 0
    done = await postsuper.act(cfg, "hold", [m.queue_id for m in todo])
    async with db.opened(cfg.database) as conn:
        await holds.remember(conn, cfg.node.name, [(m.queue_id, domain_ids[m.domain]) for m in todo])
    return done.done


async def give_back(cfg: Config, queue_ids: list[str]) -> int:
    """Release messages mrod held (delivered now: mrod.operations.postsuper.release) and forget them."""
    if not queue_ids:
        return 0
    done = await postsuper.release(cfg, queue_ids)
    async with db.opened(cfg.database) as conn:
        await holds.forget(conn, cfg.node.name, queue_ids)
    return done.done


async def apply(cfg: Config) -> Applied:
    """Raises QueueUnavailable (Postfix down, postsuper not allowed) and DatabaseUnreachable."""
    async with db.opened(cfg.database) as conn:
        held = {h.domain: h.domain_id for h in await holds.all_holds(conn)}
        ours = await holds.held_ids(conn, cfg.node.name)
    count = 0
    if held:
        messages = await queuemessages.of_domains(cfg, set(held))
        count = await hold_messages(cfg, messages, held)
        still = {m.queue_id for m in messages}
        gone = [q for q, d in ours.items() if d in held.values() and q not in still]
        if gone:      # delivered or deleted by hand meanwhile
            async with db.opened(cfg.database) as conn:
                await holds.forget(conn, cfg.node.name, gone)
    released = await give_back(cfg, [q for q, d in ours.items() if d not in held.values()])
    if count or released:
        log.info("holds: %d message(s) put on hold, %d given back to Postfix", count, released)
    return Applied(count, released)


async def set_hold(cfg: Config, actor: Actor, name: str, held: bool) -> tuple[holds.Hold | None, str]:
    """Hold or release a domain (CLI, panel, API) and bring this node's queue in line now:
    (the hold — for a release the one lifted, None if there was none —, what the queue did)."""
    async with db.opened(cfg.database) as conn:
        found = await (holds.hold(conn, actor, name) if held else holds.release(conn, actor, name))
    try:
        done = await apply(cfg)
    except (QueueUnavailable, DatabaseUnreachable) as exc:
        return found, f"this node's queue is unchanged for now ({exc}); mrod serve's queue job applies it"
    return found, f"{done.held} message(s) put on hold, {done.released} given back to Postfix on this node"
