"""After mrod was away, Postfix's smtpd may cache failed resolves (451 for a sender/recipient
pair until `postfix reload`). `mrod serve` start-up finds the failures in real Postfix's log,
says so (log and `mrod health`), and reloads Postfix itself with
[postfix] reload_after_outage = true (issue 14.6)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest

from mrod.cli.server import components
from mrod.infra import config as configmod
from mrod.operations import postfixcache
from mrod.operations.postfixcache import PostfixCacheCheck
from tests.ops.test_postfix_ops import add_sections
from tests.postfix.conftest import seed

pytestmark = pytest.mark.postfix

ADDRESSES = ["b@example.com", "c@example.com"]


def run_check(cfg: configmod.Config) -> postfixcache.Finding | None:
    """What `mrod serve` starts after lookupd: the component, its one check to the end."""
    async def go() -> postfixcache.Finding | None:
        check = PostfixCacheCheck(cfg)
        await check.start()
        assert check.task is not None
        result = await check.task
        await check.stop()
        return result
    return asyncio.run(go())


def test_serve_start_up_finds_cached_failures_says_so_and_reloads_when_told(
        mrod_factory, postfix_factory, caplog: pytest.LogCaptureFixture) -> None:
    mrod = mrod_factory(start=False)
    seed(mrod.db_path, relay_list=[{"name": "p1", "host": "127.0.0.1", "port": 2}],
         domain_list=[{"name": "example.com", "relay": "p1"}])
    mrod.start()
    postfix = postfix_factory(mrod.config)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    assert any(isinstance(c, PostfixCacheCheck) for c in components(cfg, lookupd=False, admin=False))
    assert postfix.rcpt_reply("a@example.com").code == 250
    assert postfixcache.detect(cfg) is None                   # nothing failed yet
    assert postfixcache.maillog_path(cfg) == postfix.log_path   # Postfix's maillog_file, via postconf

    # mrod away: Postfix meets lookup failures (and its smtpd caches them).
    mrod.stop()
    for rcpt in ADDRESSES:
        reply = postfix.rcpt_reply(rcpt)
        assert (reply.code, reply.text) == (451, f"4.3.0 <{rcpt}>: Temporary lookup failure")
    mrod.start()

    # Start-up without reload_after_outage: a warning saying what clears them; no reload.
    caplog.set_level(logging.INFO, logger="mrod.postfixcache")
    mark = postfix.log_mark()
    finding = run_check(cfg)
    assert finding is not None and finding.rejects == 2 and finding.failures >= 2
    assert finding.log_path == str(postfix.log_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == finding.message() and "`postfix reload` clears them" in warnings[0]
    assert "reload_after_outage = true" in warnings[1]
    assert "reload -- " not in postfix.log_text()[mark:]
    # `mrod health` says the same.
    shown = mrod.cli("health", check=False)
    assert shown.returncode == 0 and "postfix: Postfix logged" in shown.stdout
    assert "`postfix reload` clears them" in shown.stdout

    # With reload_after_outage = true, start-up reloads Postfix: every pair is accepted again.
    caplog.clear()
    cfg = dataclasses.replace(cfg, postfix=dataclasses.replace(cfg.postfix, reload_after_outage=True))
    assert run_check(cfg) is not None
    assert any("postfix reload done" in r.getMessage() for r in caplog.records)
    postfix.wait_for_log(r"postfix/master\[\d+\]: reload -- ", since=mark)
    deadline = time.monotonic() + 20
    waiting = list(ADDRESSES)
    while waiting and time.monotonic() < deadline:
        waiting = [r for r in waiting if postfix.rcpt_reply(r).code != 250]
        time.sleep(0.1 if waiting else 0)
    assert waiting == []
    # The failures before the reload are no longer cached: nothing to say any more.
    assert postfixcache.detect(cfg) is None
    assert "postfix:" not in mrod.cli("health").stdout


def test_scan_reads_both_log_formats_and_ignores_old_or_reloaded_failures() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    table = "socketmap:inet:127.0.0.1:10101:relay_domains"
    problem = f"warning: relay_domains: {table}: table lookup problem"
    reject = ("NOQUEUE: reject: RCPT from x[192.0.2.1]: 451 4.3.0 <a@example.com>: Temporary lookup failure; "
              "from=<s@x.test> to=<a@example.com>")
    iso = (now - timedelta(minutes=5)).isoformat()
    old = (now - postfixcache.MAX_AGE - timedelta(minutes=1)).isoformat()
    text = "\n".join([
        f"{old} mx postfix/trivial-rewrite[1]: {problem}",                 # too old to be cached
        f"{iso} mx postfix/trivial-rewrite[1]: {problem}",
        f"{iso} mx postfix/trivial-rewrite[1]: warning: relay_domains: other:table: table lookup problem",
        f"{iso} mx postfix/smtpd[2]: {reject}",
    ])
    assert postfixcache.scan(text, [table], now) == (1, 1, iso, iso)
    reloaded = text + f"\n{iso} mx postfix/master[3]: reload -- version 3.7.11, configuration /etc/postfix\n"
    assert postfixcache.scan(reloaded, [table], now) == (0, 0, "", "")
    assert postfixcache.scan(reloaded + f"{iso} mx postfix/smtpd[4]: {reject}\n", [table], now) == (0, 1, iso, iso)


def test_an_unreadable_log_is_one_warning_naming_the_fix(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = configmod.from_dict({"postfix": {"maillog": str(tmp_path / "no-such.log")}})
    caplog.set_level(logging.INFO, logger="mrod.postfixcache")
    assert postfixcache.check_and_act(cfg) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "set Postfix's maillog_file or [postfix] maillog" in record.getMessage()
