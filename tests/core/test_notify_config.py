"""[notify] with its channel sub-tables [notify.email] and [notify.webhook]: defaults, values
checked at load with a one-line error naming the key, environment overrides of sub-table keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrod.infra import config
from mrod.infra.errors import ConfigError
from mrod.notify import channels


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mrod.toml"
    path.write_text(text)
    return path


def test_defaults_set_up_no_operator_channel(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, ""), env={})
    assert cfg.notify.enabled and cfg.notify.queue_age == 3600.0 and cfg.notify.email.to == ()
    assert cfg.notify.email.owners and cfg.notify.webhook.url == ""
    assert list(channels.configured(cfg)) == ["email"]     # the owners' contact addresses only


def test_channels_load_and_addresses_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("k\n")
    cfg = config.load(write(tmp_path, f"""
[notify]
queue_messages = 0
[notify.email]
to = ["Ops@Example.NET", "pager@example.net"]
smtp = "mail.example.net:587"
[notify.webhook]
url = "https://chat.example.net/hooks/abc"
secret_file = "{tmp_path / 'secret'}"
"""), env={})
    assert cfg.notify.email.to == ("ops@example.net", "pager@example.net")
    assert cfg.notify.queue_messages == 0
    assert set(channels.configured(cfg)) == {"email", "webhook"}


@pytest.mark.parametrize("text,message", [
    ("[notify]\ninterval = 0\n", "notify.interval: must be greater than 0"),
    ("[notify]\nqueue_age = -1\n", "notify.queue_age: must be 0 or more"),
    ("[notify]\nretry_backoff = 600\nretry_max = 60\n", "notify.retry_max must be at least notify.retry_backoff"),
    ("[notify]\nemail = 'ops@example.net'\n", "notify.email: must be a table [notify.email]"),
    ("[notify.email]\nto = ['ops']\n", "notify.email.to: 'ops' is not an address"),
    ("[notify.email]\nto = ['@example.net']\n", "notify.email.to: '@example.net' must be an address"),
    ("[notify.email]\nto = 'ops@example.net'\n", "notify.email.to: expected a list of strings"),
    ("[notify.email]\nsmtp = 'unix:/run/smtp'\n", "notify.email.smtp: 'unix:/run/smtp'"),
    ("[notify.email]\nsmtp = 'mail.example.net'\n", "notify.email.smtp"),
    ("[notify.email]\nbcc = ['x@example.net']\n", "unknown key notify.email.bcc"),
    ("[notify.webhook]\nurl = 'chat.example.net/hook'\n", "notify.webhook.url: 'chat.example.net/hook' must be an http"),
    ("[notify.webhook]\nsecret_file = 'secret'\n", "notify.webhook.secret_file: must be an absolute path"),
    ("[notify.webhook]\nsecret_file = '/nonexistent/secret'\n", "/nonexistent/secret is not a file"),
    ("[notify.webhook]\ntimeout = 0\n", "notify.webhook.timeout: must be greater than 0"),
    ("[notify.pager]\nurl = 'x'\n", "unknown key notify.pager"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text), env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_sub_table_keys_from_the_environment(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, ""), env={"MROD_NOTIFY_EMAIL_TO": "a@example.net, b@example.net",
                                               "MROD_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/h"})
    assert cfg.notify.email.to == ("a@example.net", "b@example.net")
    assert cfg.notify.webhook.url == "http://127.0.0.1:9/h"
    with pytest.raises(ConfigError, match="MROD_NOTIFY_EMAIL: names no setting|MROD_NOTIFY_EMAIL names no setting"):
        config.load(write(tmp_path, ""), env={"MROD_NOTIFY_EMAIL": "x"})
    with pytest.raises(ConfigError, match="MROD_NOTIFY_WEBHOOK_TIMEOUT: must be greater than 0"):
        config.load(write(tmp_path, ""), env={"MROD_NOTIFY_WEBHOOK_TIMEOUT": "0"})
