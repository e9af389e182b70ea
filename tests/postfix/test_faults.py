"""Database faults seen from a real Postfix: mail is deferred (4xx), never refused (5xx), and
flows again once the fault is gone. lookupd answers TEMP — never NOTFOUND for a domain that
exists — which Postfix turns into ``451 4.3.0 Temporary lookup failure`` at RCPT and a
lookup error in ``postmap -q`` (exit 1 with ``fatal: ... query error``, not a silent miss).

Which lock keeps lookupd out (SQLite in WAL mode, as mrod runs it): an ordinary writer never
blocks readers. ``PRAGMA locking_mode=EXCLUSIVE`` plus a write transaction does keep every
reader out — but SQLite grants it only while no other connection has the file open, and
lookupd keeps its read connection open for good: with lookupd running the lock is simply
refused (tested below). lookupd meets a held lock when it opens the file: at start, after any
fault (it drops its connection), or when the file was replaced. The test starts lookupd while
another process holds the lock; each lookup then waits ``lookup_deadline`` (1 s here) and
answers TEMP.

After the fault (seen with Postfix 3.7.11): smtpd keeps a per-process cache of resolve results
keyed by (sender, address) and it caches FAILED resolves too. An smtpd process that met the
fault for an address keeps answering 451 for that sender and address until the process exits
(max_idle 100 s, max_use 100) or ``postfix reload`` replaces it; every other address, and the
same address from another sender, is accepted at once. Still 4xx: the client retries, nothing
is lost. The tests check exactly that, then reload and see every address accepted.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.data import seed_file_sync
from tests.postfix.conftest import LockHolder, payload, plain_read, replace_with_corrupt

pytestmark = pytest.mark.postfix

TEMPFAIL = "4.3.0 <{}>: Temporary lookup failure"
# Keys of existing data, one per map: none may ever be answered "not found" during a fault.
EXISTING = {
    "relay_domains": "example.com",
    "transport": "joe@example.com",
    "relay_recipients": "joe@listed.example",
    "tls_policy": "[mx-secure.example.net]:25",
}
# joe@example.com is resolved before the fault (smtpd caches it as relayed); the others are
# first seen during the fault.
RECIPIENTS = ["joe@example.com", "fresh@example.com", "joe+x@listed.example"]


def setup_backup_mx(mrod, postfix_factory, sink):
    seed_file_sync(mrod.db_path,
         relays=[dict(name="p1", host="127.0.0.1", port=sink.port),
                     dict(name="secure", host="mx-secure.example.net", tls="encrypt")],
         domains=[dict(name="example.com", relay="p1"),
                      dict(name="listed.example", relay="p1", recipients="listed"),
                      dict(name="secure.example", relay="secure")],
         recipients=["joe@listed.example"])
    postfix = postfix_factory(mrod.config)
    assert postfix.rcpt_reply("joe@example.com").code == 250
    return postfix


def assert_lookup_errors(postfix, mrod, tcp_maps=tuple(EXISTING)) -> None:
    """postmap meets an error — not "not found" — for existing keys: every map through the
    socketmap, ``tcp_maps`` through their tcp tables (each such error costs Postfix's tcp
    client a 1 s pause)."""
    tables = [(m, mrod.socketmap_table(m)) for m in EXISTING] + [(m, mrod.tcp_table(m)) for m in tcp_maps]
    for map_name, table in tables:
        rc, out, err = postfix.postmap_q(EXISTING[map_name], table)
        assert (rc, out) == (1, ""), (table, rc, out, err)
        assert f"fatal: table {table}: query error" in err, (table, err)
        if table.startswith("socketmap:"):
            assert "socketmap server temporary error: database unavailable" in err, err


def assert_tempfails(postfix) -> None:
    for rcpt in RECIPIENTS:
        reply = postfix.rcpt_reply(rcpt)
        assert (reply.code, reply.text) == (451, TEMPFAIL.format(rcpt)), rcpt


def assert_mail_flows_again(postfix, sink, tag: str) -> None:
    for rcpt in RECIPIENTS:
        reply = postfix.rcpt_reply(rcpt)
        # 451 only where an smtpd process cached its failed resolve (module docstring).
        assert reply.code == 250 or (reply.code, reply.text) == (451, TEMPFAIL.format(rcpt)), reply
        assert postfix.rcpt_reply(rcpt, sender=f"{tag}@client.test").code == 250, rcpt
    fresh = f"{tag}@example.com"
    already = len(sink.messages)
    postfix.smtp([fresh], payload(tag, fresh))
    assert sink.wait_for(already + 1)[-1].rcpt_tos == (fresh,)

    postfix.reload()
    deadline = time.monotonic() + 20
    waiting = list(RECIPIENTS)
    while waiting and time.monotonic() < deadline:
        waiting = [r for r in waiting if postfix.rcpt_reply(r).code != 250]
        time.sleep(0.1 if waiting else 0)
    assert waiting == [], "still refused after postfix reload"


def assert_no_permanent_refusal(postfix, since: int) -> None:
    refusals = re.findall(r"reject: RCPT .*?: (\d{3} \S+)", postfix.log_text()[since:])
    assert refusals and all(r.startswith("451 4.3.0") for r in refusals), refusals


def test_lock_is_refused_while_lookupd_holds_the_database_open(mrod_factory, postfix_factory, smtp_sink) -> None:
    mrod = mrod_factory()
    postfix = setup_backup_mx(mrod, postfix_factory, smtp_sink)
    with LockHolder(mrod.db_path) as holder:
        assert not holder.locked
        assert holder.status == "refused database is locked"
    assert postfix.rcpt_reply("fresh@example.com").code == 250


def test_locked_database_defers_mail_until_the_lock_is_released(mrod_factory, postfix_factory, smtp_sink) -> None:
    mrod = mrod_factory(lookup_deadline=1.0)
    postfix = setup_backup_mx(mrod, postfix_factory, smtp_sink)
    mark = postfix.log_mark()
    mrod.stop()
    with LockHolder(mrod.db_path) as holder:
        assert holder.locked, holder.status
        assert plain_read(mrod.db_path) == "database is locked"     # the lock really keeps readers out
        mrod.start()                                               # lookupd opens the locked file
        assert_tempfails(postfix)
        assert_lookup_errors(postfix, mrod, tcp_maps=("relay_domains",))
        holder.release()
    assert plain_read(mrod.db_path) == "ok"
    assert "database busy for 1s" in mrod.stderr_text()
    assert_mail_flows_again(postfix, smtp_sink, "after-lock")
    assert_no_permanent_refusal(postfix, mark)


@pytest.mark.parametrize("fault", ["corrupt", "missing"])
def test_replaced_database_defers_mail_until_restored(mrod_factory, postfix_factory, smtp_sink, fault: str) -> None:
    mrod = mrod_factory()
    postfix = setup_backup_mx(mrod, postfix_factory, smtp_sink)
    mark = postfix.log_mark()
    good = replace_with_corrupt(mrod.db_path)
    if fault == "missing":
        os.unlink(mrod.db_path)
    assert_tempfails(postfix)
    assert_lookup_errors(postfix, mrod, tcp_maps=tuple(EXISTING) if fault == "corrupt" else ("relay_domains",))
    os.replace(good, mrod.db_path)
    assert_mail_flows_again(postfix, smtp_sink, f"after-{fault}")
    assert_no_permanent_refusal(postfix, mark)
