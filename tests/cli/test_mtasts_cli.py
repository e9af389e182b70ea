"""`mrod mta-sts`: bad input is one line and exit 2; an empty cache lists as []; a domain whose
policy cannot be looked up is a runtime error (exit 1) with its row kept. (Fetching for real:
tests/mtasts.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_bad_domain_and_empty_list(ready) -> None:
    result = ready("mta-sts", "refresh", "not a domain")
    assert result.code == 2 and result.err.count("\n") == 1 and "domain" in result.err
    result = ready("mta-sts", "list", "--json")
    assert result.code == 0 and json.loads(result.out) == []
    with pytest.raises(SystemExit) as exit_:           # an action is required (argparse's own exit)
        ready("mta-sts")
    assert exit_.value.code == 2


def test_a_failed_lookup_exits_1_and_is_listed(ready, config_file: Path) -> None:
    # A resolver that answers nothing (a closed port): the TXT lookup fails.
    config_file.write_text(config_file.read_text() + '[mta_sts]\nresolver = "127.0.0.1"\nresolver_port = 9\n'
                           "timeout = 0.5\ndane = false\n")
    result = ready("mta-sts", "refresh", "example.com")
    assert result.code == 1 and "example.com" in result.out
    [row] = json.loads(ready("mta-sts", "list", "--json").out)
    assert row["domain"] == "example.com" and "TXT lookup of _mta-sts.example.com" in row["error"]
    assert row["answer"] is None
