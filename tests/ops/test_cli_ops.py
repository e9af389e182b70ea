"""`mrod check`, `mrod health` and the policy line of `mrod postfix-config`, run in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from mrod.infra import config as configmod
from mrod.answers import postfixlines
from mrod.cli import main
from tests.harness.named import Named
from tests.harness.smtpsink import SmtpSink


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    path = tmp_path / "mrod.toml"
    path.write_text('[database]\npath = "mrod.db"\n[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n')

    def mrod(*args: str, extra: str = "") -> tuple[int, str, str]:
        if extra:
            with open(path, "a") as fh:
                fh.write(extra)
        capsys.readouterr()
        code = main(["--config", str(path), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert mrod("init")[0] == 0
    return mrod


@pytest.mark.parametrize("policy, line", [
    ("127.0.0.1:10102", "smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10102"),
    ("[::1]:10102", "smtpd_recipient_restrictions = check_policy_service inet:[::1]:10102"),
    ("unix:/var/spool/postfix/private/mrod-policy", "smtpd_recipient_restrictions = check_policy_service unix:private/mrod-policy"),
    ("", None),
])
def test_postfix_config_policy_line(policy: str, line: str | None) -> None:
    text = postfixlines.main_cf(configmod.from_dict({"lookupd": {"policy": policy}}))
    found = [ln for ln in text.splitlines() if "check_policy_service" in ln and not ln.startswith("#")]
    assert found == ([line] if line else [])
    # No default_action: Postfix's own (451 4.3.5) applies when mrod cannot answer.
    assert "default_action" not in text
    assert "fast_flush_domains = $relay_domains" in text


NAMED_ZONES = {"good.test": "@ IN MX 10 mail\n@ IN MX 20 mx2.good.test.\nmail IN A 127.0.0.2\nmx2 IN A 127.0.0.1\n",
               "bad.test": "@ IN A 127.0.0.2\n"}


@pytest.mark.bind
def test_check_command(run, named: Named) -> None:
    extra = (f'[checks]\nmx_names = ["mx2.good.test"]\nresolver = "127.0.0.1"\nresolver_port = {named.port}\n'
             'timeout = 3.0\n')
    assert run("relay", "add", "primary", "--host", "mail.good.test", extra=extra)[0] == 0
    run("domain", "add", "good.test", "--relay", "primary")
    run("domain", "add", "bad.test", "--relay", "primary")
    code, out, _ = run("check")
    assert code == 1
    assert "bad.test: error" in out
    assert "good.test: ok" in out
    assert "fix: add MX records" in out
    assert "2 domain(s): 1 ok, 0 warning, 1 error" in out
    code, out, _ = run("check", "good.test", "--json")
    assert code == 0
    assert [(r["domain"], r["status"]) for r in json.loads(out)] == [("good.test", "ok")]
    code, out, err = run("check", "nothere.test")
    assert code == 1
    assert out == ""
    assert err.strip() == "mrod: error: domain 'nothere.test' does not exist"


def test_health_command(run) -> None:
    sink = SmtpSink("primary")
    run("relay", "add", "primary", "--host", "127.0.0.1", "--port", str(sink.port),
        extra="[health]\ndown_after = 1\nup_after = 1\ntimeout = 2.0\nflush_on_up = false\n")
    code, out, _ = run("health")
    assert code == 0
    assert "unknown" in out
    assert "never" in out
    code, out, _ = run("health", "--probe")
    assert code == 1
    assert "relay primary: unknown -> down" in out
    sink.start()
    try:
        code, out, _ = run("health", "--probe", "--json")
    finally:
        sink.stop()
    assert code == 0
    [row] = json.loads(out[out.index("["):])
    assert (row["name"], row["state"], row["last_ok"], row["starttls"]) == ("primary", "up", True, False)


def test_domain_operations_flags(run) -> None:
    run("relay", "add", "primary", "--host", "127.0.0.1")
    code, out, _ = run("domain", "add", "example.com", "--relay", "primary", "--recipients", "verify",
                       "--when-down", "defer", "--quota-messages", "100")
    assert code == 0
    assert "recipients=verify" in out
    assert "down: defer" in out
    assert "quota 100 messages" in out
    code, out, _ = run("domain", "set", "example.com", "--pause", "primary migration", "--quota-bytes", "0")
    assert code == 0
    assert "PAUSED (primary migration)" in out
    assert "no bytes quota" in out
    code, out, _ = run("domain", "show", "example.com", "--json")
    d = json.loads(out)["domain"]
    assert (d["paused"], d["pause_reason"], d["quota_messages"], d["quota_bytes"], d["verify_when_down"]) == (
        True, "primary migration", 100, 0, "defer")
    code, out, _ = run("domain", "set", "example.com", "--unpause", "--quota-messages", "default")
    assert code == 0
    assert "PAUSED" not in out
    assert "quota 100" not in out
    code, out, err = run("domain", "set", "example.com", "--quota-messages", "lots")
    assert code == 2
    assert "quota_messages" in err
    d = json.loads(run("domain", "show", "example.com", "--json")[1])["domain"]
    assert (d["paused"], d["pause_reason"], d["quota_messages"]) == (False, None, None)


@pytest.mark.bind
def test_domain_list_shows_the_dns_status(run, named: Named) -> None:
    extra = (f'[checks]\nmx_names = ["mx2.good.test"]\nresolver = "127.0.0.1"\nresolver_port = {named.port}\n'
             'timeout = 3.0\n')
    run("relay", "add", "primary", "--host", "mail.good.test", extra=extra)
    run("domain", "add", "good.test", "--relay", "primary")
    run("domain", "add", "bad.test", "--relay", "primary")
    listed = json.loads(run("domain", "list", "--json")[1])
    assert [(d["name"], d["dns_check"]) for d in listed] == [("bad.test", None), ("good.test", None)]
    run("check")
    listed = json.loads(run("domain", "list", "--json")[1])
    assert [(d["name"], d["dns_check"]) for d in listed] == [("bad.test", "error"), ("good.test", "ok")]
    table = run("domain", "list")[1].splitlines()
    assert table[0].split()[-1] == "DNS"
    assert table[1].split()[-1] == "error"
    assert table[2].split()[-1] == "ok"
