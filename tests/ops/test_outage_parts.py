"""The parts of a primary's return without Postfix: delivery lines read from Postfix's log
(and the log followed across a rotation), the breaker's verdict, outage history and
availability on both engines, domain holds with their audit, and the pace `postfix-config`
sets. The real-Postfix side: tests/ops/test_careful_flush.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mrod.answers import postconfplan, postfixlines
from mrod.entities import audit, domains, holds, relays
from mrod.infra import db
from mrod.infra.errors import ConfigError
from mrod.operations import deliveries, outages, queuemessages
from mrod.operations.carefulflush import Trial
from tests.conftest import make_config

SENT = ("Dec  7 20:16:31 mx postfix/relay/smtp[29047]: C3798215F16: to=<joe@example.com>, relay=127.0.0.1[127.0.0.1]"
        ":2525, delay=0.12, delays=0.03/0.09/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 123)")
REFUSED = ("Dec  7 20:16:31 mx postfix/relay[81]: D6128215F9A: to=<gone@Sub.Example.com>, orig_to=<x@example.com>,"
           " relay=mx1.example.net[192.0.2.1]:25, delay=1.2, delays=0/0/0.1/0, dsn=5.1.1, status=bounced (host"
           " mx1.example.net[192.0.2.1] said: 550 5.1.1 <gone@example.com>: User unknown (in reply to RCPT TO"
           " command))")
SOFT = REFUSED.replace("dsn=5.1.1, status=bounced", "dsn=4.1.1, status=deferred").replace("D6128215F9A", "AB12CD34EF")
OWN_5XX = ("2026-12-07T20:16:31.1+00:00 mx postfix/smtp[9]: E1E1E1E1E1: to=<a@example.com>, relay=none, delay=0,"
           " delays=0/0/0/0, dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for"
           " name=example.com type=MX: Host not found)")


def test_delivery_lines_and_what_counts_as_a_refusal_by_the_primary() -> None:
    sent, refused, soft, own = map(deliveries.parse, (SENT, REFUSED, SOFT, OWN_5XX))
    assert sent and (sent.queue_id, sent.recipient, sent.status, sent.dsn) == ("C3798215F16", "joe@example.com",
                                                                              "sent", "2.0.0")
    assert refused and refused.status == "bounced" and refused.recipient == "gone@Sub.Example.com"
    assert [o.refused_by_primary for o in (sent, refused, soft, own) if o] == [False, True, True, False]
    assert deliveries.parse("postfix/qmgr[1]: ABCDEF: removed") is None
    assert deliveries.parse("garbage status=bounced (") is None


def test_the_log_is_followed_from_the_end_then_across_a_rotation(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    log = tmp_path / "mail.log"
    log.write_text(REFUSED + "\n")                 # before mrod watched: not counted
    reader = deliveries.DeliveryLog(cfg, log)
    assert reader.read_round() == []
    with open(log, "a") as fh:
        fh.write(SENT + "\n" + SOFT[:40])          # a line still being written waits
    assert [o.status for o in reader.read_round()] == ["sent"]
    with open(log, "a") as fh:
        fh.write(SOFT[40:] + "\n")
    log.rename(tmp_path / "mail.log.1")            # rotated after one more line
    log.write_text(REFUSED + "\n")
    again = deliveries.DeliveryLog(cfg, log)        # a restart: the offset was kept on disk
    assert [o.queue_id for o in again.read_round()] == ["AB12CD34EF", "D6128215F9A"]
    assert again.read_round() == []


def test_the_breaker_trips_on_the_same_share_of_a_shorter_trial() -> None:
    assert Trial(10, 5, "").trips(10, 5) and not Trial(10, 4, "").trips(10, 5)
    assert Trial(4, 2, "").trips(10, 5) and not Trial(4, 1, "").trips(10, 5)
    assert Trial(1, 1, "").trips(10, 5) and not Trial(0, 0, "refused").trips(10, 5)


def test_the_pace_is_set_on_the_relay_transport(tmp_path: Path) -> None:
    assert "_destination_" not in postfixlines.main_cf(make_config(tmp_path))
    cfg = make_config(tmp_path, flush={"concurrency": 2, "rate_delay": 1})
    wanted = postconfplan.parse_main_cf(postfixlines.main_cf(cfg))
    assert wanted["relay_destination_concurrency_limit"] == "2" and wanted["relay_destination_rate_delay"] == "1s"
    planned = {c.parameter: c.new for c in postconfplan.plan(wanted, {}, {})}
    assert planned["relay_destination_concurrency_limit"] == "2"
    assert postconfplan.plan(wanted, {k: v for k, v in wanted.items()}, wanted) == []
    for bad in ({"trial_messages": 0}, {"transport": "no such"}, {"rate_delay": -1}, {"unknown": 1}):
        with pytest.raises(ConfigError):
            make_config(tmp_path, flush=bad)


def _ago(**delta: float) -> str:
    return db.stamp(datetime.now(timezone.utc) - timedelta(**delta))


async def test_outage_history_and_availability(conn, actor) -> None:
    relay = await relays.add(conn, actor, name="primary", host="127.0.0.1", port=25)
    await domains.add(conn, actor, "example.com", relay="primary")
    row = await domains.get(conn, "example.com")
    async with db.transaction(conn):
        await outages.started(conn, "n1", relay.id, _ago(days=2))
        await outages.started(conn, "n1", relay.id, _ago(days=1))     # one open outage per relay and node
    await outages.note_queue(conn, "n1", {row.id: 7}, db.now())
    await outages.note_queue(conn, "n1", {row.id: 3}, db.now())       # the most queued stays
    async with db.transaction(conn):
        await outages.ended(conn, "n1", relay.id, _ago(hours=26, minutes=24))   # 21h36m = 0.9 day
    await outages.note_queue(conn, "n1", {row.id: 2}, db.now())       # not flushed yet
    [outage] = await outages.history(conn, relay_id=relay.id)
    assert outage["queued"] == 7 and outage["flushed_at"] is None and not outage["ongoing"]
    assert abs(outage["duration_s"] - 0.9 * 86400) < 60
    await outages.note_queue(conn, "n1", {}, db.now())                 # nothing left: flushed
    [outage] = await outages.history(conn, relay_id=relay.id, node="n1")
    assert outage["flush_s"] == pytest.approx(26.4 * 3600, abs=60)
    assert await outages.availability(conn, relay.id, "n1", 7) == pytest.approx(1 - 0.9 / 7, abs=1e-3)
    assert await outages.availability(conn, relay.id, "other", 30) == 1.0
    async with db.transaction(conn):
        await outages.started(conn, "n1", relay.id, _ago(days=40))     # an old outage, still open
    assert await outages.availability(conn, relay.id, "n1", 30) < 0.001


async def test_a_hold_is_kept_once_audited_and_released(conn, actor) -> None:
    await relays.add(conn, actor, name="primary", host="127.0.0.1", port=25)
    await domains.add(conn, actor, "example.com", relay="primary")
    first = await holds.hold(conn, actor, "Example.COM", detail="moving mailboxes")
    again = await holds.hold(conn, actor, "example.com", reason="breaker")
    assert (first.reason, again.reason, again.held_by) == ("manual", "manual", actor.name)
    assert [h.domain for h in await holds.all_holds(conn)] == ["example.com"]
    await holds.remember(conn, "n1", [("ABCDEF123", first.domain_id)])
    assert await holds.held_ids(conn, "n1") == {"ABCDEF123": first.domain_id}
    assert (await holds.release(conn, actor, "example.com")) == first
    assert await holds.release(conn, actor, "example.com") is None
    assert [e.action for e in await audit.entries(conn, entity="domain")][:2] == ["release", "hold"]
    with pytest.raises(Exception, match="does not exist"):
        await holds.hold(conn, actor, "nowhere.example")


def test_a_recipient_belongs_to_the_domain_that_relays_it() -> None:
    ours = {"example.com": True, "own.example.com": False, "plain.example": False}
    assert queuemessages.owner("a@Example.COM", ours) == "example.com"
    assert queuemessages.owner("a@deep.sub.example.com", ours) == "example.com"      # subdomains included
    assert queuemessages.owner("a@own.example.com", ours) == "own.example.com"       # its own row, not its parent's
    assert queuemessages.owner("a@x.own.example.com", ours) == "example.com"         # own.example.com: no subdomains
    assert queuemessages.owner("a@sub.plain.example", ours) is None
    assert queuemessages.owner("postmaster", ours) is None
