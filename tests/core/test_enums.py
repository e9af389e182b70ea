"""Enumerations are defined once (mrod.infra.enums) and the schema's CHECK constraints list the
same values: read back from a freshly migrated database, every `column IN (...)` CHECK."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from pathlib import Path

import mrod
from mrod.answers import routing
from mrod.infra import db, enums, journal

# table -> {column: the tuple the code validates with}.
TABLES: dict[str, dict[str, tuple[str, ...]]] = {
    "relay": {"protocol": enums.PROTOCOLS, "tls": enums.TLS_LEVELS, "when_primary_up": enums.RELAY_WHEN_PRIMARY_UP},
    "domain": {"protocol": enums.PROTOCOLS, "tls": enums.TLS_LEVELS, "route": enums.ROUTES,
               "recipients": enums.RECIPIENT_POLICIES, "source": enums.SOURCES,
               "verify_when_down": enums.VERIFY_WHEN_DOWN, "when_primary_up": enums.WHEN_PRIMARY_UP},
    "permission": {"name": enums.PERMISSIONS},
    "relay_health": {"state": enums.HEALTH_STATES},
    "domain_check": {"status": enums.CHECK_STATUSES},
    "host_check": {"status": enums.CHECK_STATUSES},
    "import_run": {"status": enums.RUN_STATUSES},
    "login_block": {"kind": enums.BLOCK_KINDS},
    "change": {"entity": enums.CHANGE_ENTITIES},
    "notification": {"status": enums.NOTICE_STATUSES, "channel": enums.NOTIFY_CHANNELS},
    "notify_state": {"severity": enums.SEVERITIES},
    "recipient_source": {"kind": enums.SOURCE_KINDS, "format": enums.SOURCE_FORMATS},
    "domain_hold": {"reason": enums.HOLD_REASONS},
    "mta_sts": {"mode": enums.STS_MODES},
}
EXPECTED = {(table, column): values for table, columns in TABLES.items() for column, values in columns.items()}
_IN_LIST = re.compile(r"\b(\w+)\s+IN\s*\(([^)]*)\)", re.IGNORECASE)


async def _checks(path: Path) -> dict[tuple[str, str], set[str]]:
    async with db.opened(path, create=True):
        pass
    conn = sqlite3.connect(path)
    try:
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL").fetchall()
    finally:
        conn.close()
    found: dict[tuple[str, str], set[str]] = {}
    for table, sql in tables:
        for column, values in _IN_LIST.findall(sql):
            if "'" in values:       # text enumerations; (0, 1) booleans are not
                found[(table, column)] = set(re.findall(r"'([^']*)'", values))
    return found


async def test_sql_checks_and_python_tuples_agree(tmp_path: Path) -> None:
    found = await _checks(tmp_path / "mrod.db")
    assert found == {key: set(values) for key, values in EXPECTED.items()}
    for values in EXPECTED.values():
        assert len(set(values)) == len(values)


PRODUCT = [Path(mrod.__file__).parent, *(Path(mrod.__file__).parent.parent / d for d in ("lookupd", "admin"))]


def _literal_strings(node: ast.AST) -> frozenset[str] | None:
    """The strings of a tuple/list/set literal made only of string constants, else None."""
    if not isinstance(node, (ast.Tuple, ast.List, ast.Set)) or len(node.elts) < 2:
        return None
    strings = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return frozenset(strings) if len(strings) == len(node.elts) else None


def test_no_module_spells_an_enumeration_again() -> None:
    """A literal listing exactly an enumeration's values is a second copy (as totp.MODES once
    was); only mrod/infra/enums.py spells them."""
    values = {name: frozenset(value) for name, value in vars(enums).items()
              if isinstance(value, tuple) and name.isupper()}
    copies = []
    for root in PRODUCT:
        for path in sorted(root.rglob("*.py")):
            if path.resolve() == Path(enums.__file__).resolve():
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                found = _literal_strings(node)
                copies += [f"{path}:{getattr(node, 'lineno', '?')} repeats enums.{name}"
                           for name, expected in values.items() if found == expected]
    assert copies == []


def test_the_journal_and_routing_use_the_one_definition() -> None:
    assert (journal.DOMAIN, journal.RELAY, journal.ALL) == enums.CHANGE_ENTITIES
    # routing ranks TLS levels by their order in the one tuple, weakest first.
    assert sorted(routing.TLS_ORDER, key=lambda level: routing.TLS_ORDER[level]) == list(enums.TLS_LEVELS)


def test_members_are_the_stored_strings() -> None:
    """A member is its value wherever a string goes: equal, same hash, formatted, JSON."""
    member = enums.Permission.USERMGR
    assert member == "usermgr"
    assert "usermgr" in {member}
    assert f"{member}" == "usermgr"
    assert json.dumps([member]) == '["usermgr"]'
    assert enums.PERMISSIONS == tuple(enums.Permission)
