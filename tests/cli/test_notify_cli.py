"""`mrod notify list [--json]`, `mrod notify test CHANNEL` and `mrod user set --email`: exit
codes, one-line errors, nothing changed by a refused value. (The channels against real
receivers: tests/ops/test_notify.py, tests/postfix/test_notify_mail.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import free_port


def test_list_with_nothing_set_up(mrod) -> None:
    assert mrod("init").code == 0
    result = mrod("notify", "list")
    assert result.code == 0 and "no notifications sent" in result.out
    listed = json.loads(mrod("notify", "list", "--json").out)
    assert listed["notifications"] == [] and [c["channel"] for c in listed["channels"]] == ["email"]
    bad = mrod("notify", "list", "--limit", "0")
    assert bad.code == 2 and bad.err.strip().count("\n") == 0


def test_a_channel_not_set_up_is_a_bad_value(mrod) -> None:
    assert mrod("init").code == 0
    result = mrod("notify", "test", "webhook")
    assert result.code == 2 and "the webhook channel is not set up" in result.err
    with pytest.raises(SystemExit) as info:                 # argparse: not a channel
        mrod("notify", "test", "pager")
    assert info.value.code == 2


def test_a_failing_test_exits_1_and_is_listed(mrod, config_file: Path) -> None:
    dead = free_port()
    config_file.write_text(config_file.read_text() + f'[notify.webhook]\nurl = "http://127.0.0.1:{dead}/hook"\n')
    assert mrod("init").code == 0
    result = mrod("notify", "test", "webhook")
    assert result.code == 1 and "failed: webhook: Cannot connect" in result.err
    assert result.err.strip().count("\n") == 0
    listed = json.loads(mrod("notify", "list", "--json").out)
    [notice] = listed["notifications"]
    assert notice["status"] == "failed" and notice["event"] == "test" and notice["attempts"] == 1
    assert {c["channel"]: c["state"] for c in listed["channels"]}["webhook"] == "failing"
    table = mrod("notify", "list", "--status", "failed")
    assert "channel webhook: failing" in table.out and "Cannot connect" in table.out


def test_a_bad_config_value_is_one_line_and_exit_2(mrod, config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + '[notify.email]\nto = ["ops"]\n')
    result = mrod("notify", "list")
    assert result.code == 2 and "notify.email.to: 'ops' is not an address" in result.err
    assert result.err.strip().count("\n") == 0


def test_user_contact_address(mrod) -> None:
    assert mrod("init").code == 0          # makes the user admin
    bad = mrod("user", "set", "admin", "--email", "ops")
    assert bad.code == 2 and "'ops' is not an address" in bad.err
    assert json.loads(mrod("user", "list", "--json").out)[0]["email"] is None
    assert mrod("user", "set", "admin", "--email", "Ops@Example.NET").code == 0
    assert json.loads(mrod("user", "list", "--json").out)[0]["email"] == "ops@example.net"
    assert mrod("user", "set", "admin", "--email", "none").code == 0
    assert json.loads(mrod("user", "list", "--json").out)[0]["email"] is None
