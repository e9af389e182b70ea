"""Listing and acting on queued messages for the CLI, the panel and the API: filters built and
checked from people's input, who may see which messages, and every action audited with the
message ids (entity ``queue``, action hold/release/requeue/delete/expire).

Acting on ids given by a restricted viewer (a ``domains_own`` user) first reads the queue to
make sure each id is one they may see (every recipient in their own domains): an id that is
not theirs, or no longer queued, is refused by name and nothing is done. ``all_matching``
acts on every message of a filter with a domain — only on messages whose recipients are all
in that domain: a message that also goes to another domain is left alone and counted.

After a release Postfix would deliver the message only at its next queue scan (up to
maximal_backoff_time later): mrod asks for delivery at once (``postqueue -i``). A requeued
message goes through pickup again (under a new queue id): mrod wakes pickup (``postkick``),
which otherwise looks at the maildrop queue once a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from mrod.entities import audit, domains
from mrod.entities.audit import Actor
from mrod.infra import db, durations, names
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import QUEUE_ACTIONS, QUEUE_NAMES, QueueAction
from mrod.infra.errors import InvalidInput, NotFound
from mrod.operations import postsuper, queuelist, queueroutes, queuestream
from mrod.operations.queuelist import Collector, Lister, Matcher, Page, QueueFilter

AUDIT_CHUNK = 1000      # ids per audit row: a delete of 100k messages is 100 rows, not one huge one
KICKED = (QueueAction.RELEASE,)


@dataclass
class ActionResult:
    action: str
    ids: list[str]
    done: int
    skipped: int = 0                    # matches left out (recipients in other domains too)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "ids": self.ids, "done": self.done, "skipped": self.skipped,
                "failures": self.failures}


async def build_filter(conn: Connection, *, domain: str | None = None, queue: str | None = None,
                       sender: str | None = None, recipient: str | None = None, older_than: str | None = None,
                       owner_id: int | None = None) -> QueueFilter:
    """A filter from people's input, validated (InvalidInput / NotFound). ``owner_id``: the viewer
    sees only messages wholly within the domains they own (and may filter only by those)."""
    domain_id = domain_name = None
    if domain:
        try:
            row = await domains.get(conn, domain)
        except NotFound:
            if owner_id is not None:
                raise
            domain_name = names.domain(domain, min_labels=1)   # any recipient domain, for the operator
        else:
            if owner_id is not None and row.owner_id != owner_id:
                raise NotFound(f"domain {row.name!r} does not exist or is not yours")
            domain_id, domain_name = row.id, row.name
    if queue and queue not in QUEUE_NAMES:
        raise InvalidInput("queue", f"must be one of {', '.join(QUEUE_NAMES)}")
    for what, value in (("sender", sender), ("recipient", recipient)):
        if value is not None and (len(value) > 300 or any(ord(c) < 32 for c in value)):
            raise InvalidInput(what, "must be one line of at most 300 characters")
    visible = None
    if owner_id is not None:
        page = await domains.search(conn, owner_id=owner_id, limit=None)
        visible = frozenset(d.id for d in page.domains)
    return QueueFilter(domain_id=domain_id, domain_name=domain_name, queue=queue or None,
                       sender=sender or None, recipient=recipient or None,
                       min_age=durations.parse_duration(older_than, "older than") if older_than else None,
                       visible=visible)


def _limit(value: int | str | None, default: int = 50) -> int:
    try:
        limit = default if value in (None, "") else int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= queuelist.MAX_LIMIT:
        raise InvalidInput("limit", f"must be a whole number from 1 to {queuelist.MAX_LIMIT}")
    return limit


async def _scan(cfg: Config, flt: QueueFilter, sink: Any) -> int:
    """Stream the queue through ``sink`` (a Lister or Collector whose matcher classifies with the
    route store opened on the stream's worker). Returns postqueue's bad lines."""
    def setup() -> Any:
        classify, close = queueroutes.classifier(cfg)
        sink.matcher.classify = classify
        return close

    parser = await queuestream.stream(cfg, sink.add_all, setup=setup)
    return parser.bad_lines


async def list_page(cfg: Config, flt: QueueFilter, *, limit: int | str | None = None,
                    after: str | None = None) -> Page:
    """One page of matching messages (queue-id order, after the cursor ``after``)."""
    if after:
        after = postsuper.queue_id(after)
    lister = Lister(Matcher(flt, None), _limit(limit), after)
    bad = await _scan(cfg, flt, lister)
    return lister.page(bad)


async def act(cfg: Config, actor: Actor, action: str, *, ids: Iterable[str] = (), flt: QueueFilter,
              all_matching: bool = False) -> ActionResult:
    """hold / release / requeue / delete (expire: mrod.operations.retention) the given ids, or
    every message of ``flt`` (which then must name a domain); audited."""
    if action not in QUEUE_ACTIONS or action == QueueAction.EXPIRE:
        raise InvalidInput("action", "must be hold, release, requeue or delete")
    wanted = list(dict.fromkeys(postsuper.queue_id(i) for i in ids))
    skipped = 0
    if all_matching:
        if wanted:
            raise InvalidInput("ids", "give message ids or all matching, not both")
        if flt.domain_id is None and not flt.domain_name:
            raise InvalidInput("domain", "acting on all matching messages needs a domain")
        collector = Collector(Matcher(flt, None))
        await _scan(cfg, flt, collector)
        wanted, skipped = collector.ids, collector.skipped
    elif not wanted:
        raise InvalidInput("ids", "choose at least one message")
    elif flt.visible is not None or flt.domain_id is not None or flt.domain_name:
        await _check_ids(cfg, flt, wanted)
    result = await postsuper.act(cfg, action, wanted)
    failures = await postsuper.kick(cfg, wanted) if action in KICKED and wanted else []
    if action == QueueAction.REQUEUE and result.done:
        woken = await postsuper.wake_pickup(cfg)
        failures += [woken] if woken else []
    done = ActionResult(action, wanted, result.done, skipped, failures)
    await record(cfg, actor, action, flt.domain_name, done)
    return done


async def _check_ids(cfg: Config, flt: QueueFilter, wanted: list[str]) -> None:
    """Every id queued and within the filter (the viewer's domains, the page's domain)."""
    seen: set[str] = set()
    asked = set(wanted)
    matcher = Matcher(flt, None)

    class Seen:
        def __init__(self) -> None:
            self.matcher = matcher

        def add_all(self, messages: list[Any]) -> None:
            seen.update(m.queue_id for m in messages if m.queue_id in asked and matcher.match(m) is not None)

    await _scan(cfg, flt, Seen())
    missing = [i for i in wanted if i not in seen]
    if missing:
        raise NotFound(f"not queued, or not yours: {', '.join(missing[:20])}{' …' if len(missing) > 20 else ''}")


async def record(cfg: Config, actor: Actor, action: str, domain: str | None, result: ActionResult) -> None:
    """Audit rows naming the message ids (AUDIT_CHUNK a row), this node and what Postfix did."""
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            for start in range(0, max(1, len(result.ids)), AUDIT_CHUNK):
                await audit.record(conn, actor, action, "queue", domain or "*", None, {
                    "ids": result.ids[start:start + AUDIT_CHUNK], "node": cfg.node.name, "done": result.done,
                    "skipped": result.skipped, **({"failures": result.failures[:20]} if result.failures else {})})
