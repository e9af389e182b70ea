"""Notification mail through a real Postfix: the email channel hands each message to Postfix's
own sendmail (with [postfix] config_dir), Postfix delivers it to an SMTP sink. A relay with many
domains going down reaches the sink and a loopback webhook receiver ONCE each, and the "back"
notice follows; mail about to bounce is judged by this Postfix's maximal_queue_lifetime."""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from mrod.entities import domains, relays
from mrod.infra import db
from mrod.notify import dispatcher
from mrod.operations import health
from tests.conftest import make_config
from tests.harness.smtpsink import SmtpSink
from tests.harness.webhook import WebhookReceiver

pytestmark = pytest.mark.postfix

DOMAINS = 60


class Flushes:
    """Records what the health monitor asks to flush (no mail is queued for these domains here)."""

    async def __call__(self, cfg: Any, rows: dict[int, str]) -> list[Any]:
        return []


async def test_a_dead_relay_reaches_the_operator_once_through_postfix(
        tmp_path: Path, postfix_factory: Any, smtp_sink: SmtpSink, actor: Any) -> None:
    # Postfix sends everything not local to the sink: the operator's mailbox.
    pf = postfix_factory(settings={"default_transport": f"smtp:[127.0.0.1]:{smtp_sink.port}",
                                   "maximal_queue_lifetime": "2d"})
    primary = SmtpSink("primary")        # down
    async with WebhookReceiver() as hook:
        cfg = make_config(tmp_path, postfix={"config_dir": str(pf.etc)},
                          health={"down_after": 1, "up_after": 1, "timeout": 3.0},
                          notify={"email": {"to": ["ops@ops.test"], "owners": False, "sender": "mrod@backup-mx.test"},
                                  "webhook": {"url": hook.url}})
        async with db.opened(cfg.database, create=True) as conn:
            await relays.add(conn, actor, name="primary", host="127.0.0.1", port=primary.port)
            for n in range(DOMAINS):
                await domains.add(conn, actor, f"d{n:02}.example", relay="primary")
            async with db.transaction(conn):     # mail waiting since 47 h: it bounces within a day of 2d
                d00 = (await domains.get(conn, "d00.example")).id
                await conn.execute("INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, updated_at)"
                                   " VALUES (?, ?, 4, 1, ?, ?)",
                                   (cfg.node.name, d00, int(datetime.now(timezone.utc).timestamp()) - 47 * 3600,
                                    db.now()))
        monitor = health.HealthMonitor(cfg, flusher=Flushes())
        try:
            await monitor.run_once()
            first = await dispatcher.run_round(cfg)
            assert first.delivered == 2, first           # sendmail took it; the webhook answered
            assert {i.kind for i in first.items} == {"relay_down", "queue_old", "queue_expiring"}
            [mail] = smtp_sink.wait_for(1)
            msg = message_from_bytes(mail.content)
            assert mail.rcpt_tos == ("ops@ops.test",) and mail.mail_from == "mrod@backup-mx.test"
            assert msg["Subject"].startswith("[mrod ") and "3 notices" in msg["Subject"]
            payload = msg.get_payload(decode=True)
            assert isinstance(payload, bytes)
            body = payload.decode()
            assert f"for its {DOMAINS} domain(s)" in body and "will bounce in about" in body
            assert "of a 172800 s (2d 0h) lifetime" in body
            [posted] = await hook.wait_for(1)
            assert posted.json["event"] == "digest" and "relay_down primary" in posted.json["text"]

            assert (await dispatcher.run_round(cfg)).queued == 0      # a second round tells nothing

            primary.start()
            await monitor.run_once()
            back = await dispatcher.run_round(cfg)
            assert [(i.change, i.kind) for i in back.items] == [("resolved", "relay_down")]
            [_, back_mail] = smtp_sink.wait_for(2)
            assert "RESOLVED relay_down primary" in message_from_bytes(back_mail.content)["Subject"]
            assert len(await hook.wait_for(2)) == 2
            assert len(smtp_sink.messages) == 2 and len(hook.received) == 2
        finally:
            primary.stop()


async def test_sendmail_that_fails_says_why(tmp_path: Path, actor: Any) -> None:
    cfg = make_config(tmp_path, postfix={"config_dir": "/nonexistent/postfix"},
                      notify={"email": {"to": ["ops@ops.test"]}})
    async with db.opened(cfg.database, create=True) as conn:
        [notice] = await dispatcher.send_test(conn, cfg, "email", "tester")
    assert notice.status == "failed" and "sendmail failed" in (notice.last_error or "")
