"""`--when-primary-up` on `mrod domain set|add` and `mrod relay set|add` (issue 20.1): set,
shown, audited through the entity modules; a bad value is a one-line error (exit 2) that
changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import dump


def test_domain_and_relay_modes(ready) -> None:
    r = ready("relay", "set", "primary", "--when-primary-up", "defer")
    assert r.code == 0 and "defer while up" in r.out
    [relay] = json.loads(ready("relay", "list", "--json").out)
    assert relay["when_primary_up"] == "defer"
    assert "defer" in ready("relay", "list").out.splitlines()[1]
    assert ready("relay", "add", "second", "--host", "192.0.2.7", "--when-primary-up", "defer").code == 0
    [domain] = json.loads(ready("domain", "list", "--json").out)
    assert domain["when_primary_up"] == "inherit"
    assert ready("domain", "set", "example.com", "--when-primary-up", "accept").code == 0
    show = json.loads(ready("domain", "show", "example.com", "--json").out)
    assert show["domain"]["when_primary_up"] == "accept"
    assert "while the primary is up: accept" in ready("domain", "show", "example.com").out
    assert ready("domain", "add", "new.example", "--relay", "second", "--when-primary-up", "defer").code == 0
    assert ready("domain", "set", "example.com", "new.example", "--when-primary-up", "inherit").code == 0
    modes = {d["name"]: d["when_primary_up"] for d in json.loads(ready("domain", "list", "--json").out)}
    assert modes == {"example.com": "inherit", "new.example": "inherit"}


@pytest.mark.parametrize("args", [
    ["domain", "set", "example.com", "--when-primary-up", "sometimes"],
    ["relay", "set", "primary", "--when-primary-up", "inherit"],      # a relay has no one to inherit from
    ["relay", "add", "x", "--host", "mx.example", "--when-primary-up", "maybe"],
])
def test_bad_modes_exit_2_and_change_nothing(ready, config_file: Path, args: list[str], capsys) -> None:
    before = dump(config_file)
    with pytest.raises(SystemExit) as info:
        ready(*args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--when-primary-up: invalid choice" in err
    assert dump(config_file) == before
