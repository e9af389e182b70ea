"""Enumerations are defined once (mrod.infra.enums) and the schema's CHECK constraints list the
same values: read back from a freshly migrated database, every `column IN (...)` CHECK."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from mrod.answers import routing
from mrod.entities import domains, relays, users
from mrod.infra import config, db, enums, journal

# table -> {column: the tuple the code validates with}.
TABLES: dict[str, dict[str, tuple[str, ...]]] = {
    "relay": {"protocol": enums.PROTOCOLS, "tls": enums.TLS_LEVELS},
    "domain": {"protocol": enums.PROTOCOLS, "tls": enums.TLS_LEVELS, "route": enums.ROUTES,
               "recipients": enums.RECIPIENT_POLICIES, "source": enums.SOURCES,
               "verify_when_down": enums.VERIFY_WHEN_DOWN},
    "permission": {"name": enums.PERMISSIONS},
    "relay_health": {"state": enums.HEALTH_STATES},
    "domain_check": {"status": enums.CHECK_STATUSES},
    "import_run": {"status": enums.RUN_STATUSES},
    "login_block": {"kind": enums.BLOCK_KINDS},
    "change": {"entity": enums.CHANGE_ENTITIES},
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


def test_the_modules_use_the_one_definition() -> None:
    assert relays.PROTOCOLS is enums.PROTOCOLS and relays.TLS_LEVELS is enums.TLS_LEVELS
    assert domains.ROUTES is enums.ROUTES and domains.SOURCES is enums.SOURCES
    assert domains.RECIPIENT_POLICIES is enums.RECIPIENT_POLICIES and users.PERMISSIONS is enums.PERMISSIONS
    assert (journal.DOMAIN, journal.RELAY, journal.ALL) == enums.CHANGE_ENTITIES
    assert routing.MAPS is enums.MAPS and config.ROUTING_MAPS is enums.MAPS
    # routing ranks TLS levels by their order in the one tuple, weakest first.
    assert sorted(routing.TLS_ORDER, key=lambda level: routing.TLS_ORDER[level]) == list(enums.TLS_LEVELS)
