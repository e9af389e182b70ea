"""`mrod recipient-source` and `--recipient-source` on domains and relays: what an operator
types, bad values refused with one line (exit 2) and nothing changed, `list --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.parametrize("args, message", [
    (["--ldap", "ldap://reader:s3cret@dir.example", "--base", "dc=x"], "holds a password"),
    (["--url", "https://u:s3cret@export.example/x.json"], "holds a password"),
    (["--ldap", "http://dir.example", "--base", "dc=x"], "takes a ldap:// or ldaps:// URL"),
    (["--ldap", "ldap://dir.example"], "base: is required"),
    (["--ldap", "ldap://dir.example", "--base", "dc=x", "--filter", "mail=*"], "written in parentheses"),
    (["--ldap", "ldaps://dir.example", "--base", "dc=x", "--starttls"], "TLS already"),
    (["--sql", "postgresql://mail@db.example/mail"], "query: is required"),
    (["--sql", "mysql://mail@db.example/mail", "--query", "DELETE FROM mailbox"], "must be a SELECT"),
    (["--url", "https://export.example/x", "--password-file", "relative.txt"], "absolute path"),
    (["--url", "https://export.example/x", "--password-file", "/nonexistent/pw"], "not a readable file"),
])
def test_bad_source_is_refused_and_nothing_added(ready, args: list[str], message: str) -> None:
    result = ready("recipient-source", "add", "dir", *args)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert "s3cret" not in result.err
    assert json.loads(ready("recipient-source", "list", "--json").out) == []


def test_add_use_list_and_remove(ready, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    assert ready("recipient-source", "add", "dir", "--ldap", "ldap://dir.example", "--base", "dc=example",
                 "--attribute", "mail", "--attribute", "proxyAddresses", "--password-file", str(secret)).code == 0
    assert ready("recipient-source", "add", "dir", "--url", "https://x.example/a").code == 1     # exists
    assert ready("domain", "set", "example.com", "--recipient-source", "nosuch").code == 1
    assert ready("domain", "set", "example.com", "--recipient-source", "dir").code == 0
    assert "recipients synced from dir (last good sync: never)" in ready("domain", "show", "example.com").out
    [row] = json.loads(ready("recipient-source", "list", "--json").out)
    assert row["name"] == "dir" and row["domains"] == ["example.com"] and row["state"] == "never synced"
    assert row["attributes"] == "mail,proxyAddresses" and row["password_file"] == str(secret)
    assert ready("domain", "set", "example.com", "--recipient-source", "none").code == 0
    assert json.loads(ready("recipient-source", "list", "--json").out)[0]["domains"] == []
    assert ready("relay", "set", "primary", "--recipient-source", "dir").code == 0
    assert json.loads(ready("recipient-source", "list", "--json").out)[0]["domains"] == []   # own 'none' first
    assert ready("domain", "set", "example.com", "--recipient-source", "inherit").code == 0
    assert json.loads(ready("recipient-source", "list", "--json").out)[0]["domains"] == ["example.com"]
    assert ready("relay", "set", "primary", "--recipient-source", "inherit").code == 2
    assert "dir" in ready("recipient-source", "list").out
    assert ready("recipient-source", "set", "dir", "--url", "https://u:pw@x.example/a").code == 2
    assert ready("recipient-source", "set", "dir", "--url", "https://x.example/a", "--format", "csv").code == 0
    [row] = json.loads(ready("recipient-source", "list", "--json").out)
    assert (row["kind"], row["format"], row["base"], row["domains"]) == ("url", "csv", None, ["example.com"])
    assert ready("recipient-source", "rm", "dir").code == 0
    assert json.loads(ready("recipient-source", "list", "--json").out) == []


def test_sync_of_an_unreachable_source_fails_with_one_line(ready) -> None:
    assert ready("recipient-source", "add", "web", "--url", "http://127.0.0.1:9/none.json").code == 0
    assert ready("domain", "set", "example.com", "--recipient-source", "web").code == 0
    result = ready("recipient-source", "sync")
    assert result.code == 1 and "web: FAILED:" in result.out
    [row] = json.loads(ready("recipient-source", "list", "--json").out)
    assert row["state"] == "failing" and row["error"] and row["failing_since"]
    assert ready("recipient-source", "sync", "nosuch").code == 1
