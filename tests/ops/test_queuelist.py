"""The lister and the retention rules without Postfix: pages by queue id after a cursor with
memory bounded by the page, filters, who sees which message, which messages expire; durations."""

from __future__ import annotations

import random

import pytest

from mrod.infra import durations
from mrod.infra.errors import InvalidInput
from mrod.operations.queuelist import Collector, Lister, Matcher, QueueFilter
from mrod.operations.queueparse import QueuedMessage
from mrod.operations.retention import Expiry

NOW = 1_800_000_000
ROWS = {"a.example": (1, "a.example"), "sub.a.example": (1, "a.example"), "b.example": (2, "b.example")}


def classify(domain: str):
    return ROWS.get(domain)


def msg(qid: str, *rcpts: str, queue: str = "deferred", age: int = 60, sender: str = "s@client.test") -> QueuedMessage:
    return QueuedMessage(queue, qid, NOW - age, 100, sender, tuple((r, "refused") for r in rcpts))


def page_ids(messages, flt=None, limit=2, after=None):
    lister = Lister(Matcher(flt or QueueFilter(), classify, now=NOW), limit, after)
    lister.add_all(messages)
    page = lister.page()
    return [m.message.queue_id for m in page.messages], page.next_after, page.total


def test_pages_follow_queue_ids_whatever_the_stream_order() -> None:
    messages = [msg(f"{i:06X}", "x@a.example") for i in range(20)]
    random.Random(1).shuffle(messages)
    seen, after = [], None
    while True:
        ids, after, total = page_ids(messages, limit=3, after=after)
        assert total == 20 and len(ids) <= 3
        seen += ids
        if after is None:
            break
    assert seen == sorted(f"{i:06X}" for i in range(20))
    # A message that left between pages is not needed: the cursor is an id, not a position.
    first, cursor, _ = page_ids(messages, limit=3)
    rest = [m for m in messages if m.queue_id != cursor]
    assert page_ids(rest, limit=3, after=cursor)[0] == ["000003", "000004", "000005"]


def test_memory_is_the_page_not_the_queue() -> None:
    lister = Lister(Matcher(QueueFilter(), classify, now=NOW), 5)
    lister.add_all([msg(f"{i:08X}", "x@a.example") for i in range(10_000, 0, -1)])
    assert len(lister._kept) == 6 and lister.total == 10_000


def test_filters_and_who_sees_what() -> None:
    messages = [msg("A1", "x@a.example", sender="Alice@client.test"), msg("A2", "y@Sub.A.example", queue="hold"),
                msg("B1", "z@b.example", age=7200), msg("M1", "x@a.example", "z@b.example")]
    assert page_ids(messages, QueueFilter(domain_id=1, domain_name="a.example"), 10)[0] == ["A1", "A2", "M1"]
    assert page_ids(messages, QueueFilter(queue="hold"), 10)[0] == ["A2"]
    assert page_ids(messages, QueueFilter(sender="alice"), 10)[0] == ["A1"]
    assert page_ids(messages, QueueFilter(recipient="sub.a"), 10)[0] == ["A2"]
    assert page_ids(messages, QueueFilter(min_age=3600), 10)[0] == ["B1"]
    # The owner of a.example only: the message that also goes to b.example is hidden.
    assert page_ids(messages, QueueFilter(visible=frozenset({1})), 10)[0] == ["A1", "A2"]
    collector = Collector(Matcher(QueueFilter(domain_id=2, domain_name="b.example"), classify, now=NOW))
    collector.add_all(messages)
    assert (collector.ids, collector.skipped) == (["B1"], 1)


def test_a_message_expires_by_the_longest_lifetime_of_its_domains() -> None:
    day = 86400
    expiry = Expiry({1: ("a.example", day), 2: ("b.example", 5 * day)}, now=NOW, classify=classify)
    expiry.add_all([msg("OLD_A", "x@sub.a.example", age=2 * day), msg("NEW_A", "x@a.example", age=day - 1),
                    msg("MIXED", "x@a.example", "z@b.example", age=2 * day),
                    msg("MIXED_OLD", "x@a.example", "z@b.example", age=6 * day),
                    msg("FOREIGN", "x@a.example", "q@elsewhere.example", age=9 * day),
                    msg("HELD", "x@a.example", queue="hold", age=9 * day)])
    assert expiry.ids == ["OLD_A", "MIXED_OLD"]
    assert expiry.domains == {"a.example": 2, "b.example": 1}


@pytest.mark.parametrize(("text", "seconds"), [("3d", 259200), ("12h", 43200), ("90m", 5400), ("1w", 604800),
                                                ("3600", 3600), ("45S", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert durations.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "soon", "3x", "-1d", "101d", "²d", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInput, match="not a duration"):
        durations.parse_duration(text)


def test_duration_text() -> None:
    assert [durations.duration_text(s) for s in (259200, 43200, 604800, 90, 5400)] == ["3d", "12h", "1w", "90s", "90m"]


def test_mrod_serve_runs_the_retention_job() -> None:
    from mrod.infra import config as configmod
    from mrod.operations import servejobs

    assert "retention" in [j.name for j in servejobs.jobs(configmod.from_dict({}))]
    assert "retention" not in [j.name for j in servejobs.jobs(configmod.from_dict({"queue": {"enabled": False}}))]


def test_postsuper_may_be_a_command_line() -> None:
    from mrod.infra import config as configmod
    from mrod.operations import postsuper

    cfg = configmod.from_dict({"postfix": {"postsuper": "sudo -n /usr/sbin/postsuper", "config_dir": "/etc/pf"}})
    assert postsuper.command(cfg, "-h", "-") == ["sudo", "-n", "/usr/sbin/postsuper", "-c", "/etc/pf", "-h", "-"]
    assert postsuper.sibling(cfg, "postkick") == "/usr/sbin/postkick"
    assert postsuper.sibling(configmod.from_dict({}), "postconf") == "postconf"
    with pytest.raises(InvalidInput, match="queue id"):
        postsuper.queue_id("ABC-123; rm")
