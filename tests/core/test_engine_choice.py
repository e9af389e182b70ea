"""The database engine is chosen once: outside mrod/infra and lookupd's store factory
(lookupd/stores.py, with the PostgreSQL halves it picks: pgholder.py, pgpolicy.py) no code asks
which engine it runs on — no ``database.url`` / ``target.url`` test, no ``.engine``, no
``isinstance(…, Pg…)`` or ``sqlite3.Connection``, no "postgresql"/"sqlite" literal, no import
of an engine's adapter or driver. ``mrod migrate-to`` (mrod/cli/migrate.py) copies SQLite into
PostgreSQL and may. Read with ``ast``: comments and docstrings may name the engines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("mrod", "lookupd", "admin")
ALLOWED = ("mrod/infra/", "lookupd/stores.py", "lookupd/pgholder.py", "lookupd/pgpolicy.py", "mrod/cli/migrate.py")
ADAPTERS = {"mrod.infra.pgconn", "mrod.infra.pgread", "mrod.infra.sqliteconn", "mrod.infra.copydb",
            "mrod.lookupd.pgholder", "mrod.lookupd.pgpolicy", "psycopg", "aiosqlite"}
ENGINE_WORDS = {"postgresql", "postgres", "sqlite", "sqlite3"}


def engine_questions(source: str) -> list[tuple[int, str]]:
    """(line, what) for every place ``source`` asks which engine it runs on."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value).lower()
            if node.attr == "url" and any(word in owner for word in ("database", "target", "where")):
                found.append((node.lineno, ast.unparse(node)))
            elif node.attr in ("engine", "engine_of"):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Name) and node.id == "engine_of":
            found.append((node.lineno, "engine_of"))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "isinstance" and len(node.args) == 2:
            kinds = ast.unparse(node.args[1])
            if any(word.startswith(("Pg", "Sqlite")) for word in kinds.replace(".", " ").replace(",", " ").split()) \
                    or "sqlite3." in kinds:
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Constant) and isinstance(side.value, str) and side.value in ENGINE_WORDS:
                    found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in ADAPTERS
                      or a.name in ADAPTERS]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules = {node.module, node.module.split(".")[0]} | {f"{node.module}.{a.name}" for a in node.names}
            if modules & ADAPTERS:
                found.append((node.lineno, f"from {node.module} import …"))
    return found


def test_the_detector_sees_each_kind_of_question() -> None:
    planted = """
import psycopg
from mrod.infra import pgconn
from mrod.infra.pgread import PgSyncConnection
if cfg.database.url: pass
if Target.of(where).url: pass
if db.engine_of(conn) == "postgresql": pass
if target.engine == "sqlite": pass
if isinstance(stores, PgPolicyStores): pass
if isinstance(conn, sqlite3.Connection): pass
"""
    assert sorted({line for line, _ in engine_questions(planted)}) == list(range(2, 11))
    innocent = '''
"""On PostgreSQL the snapshot follows the database; on SQLite the file is read."""
from mrod.infra import db
from mrod.infra.engine import Target
if Target.of(cfg.database).shared: pass
conn = await db.connect(cfg.database)
'''
    assert engine_questions(innocent) == []


def test_no_code_outside_the_factories_asks_which_engine_it_runs_on() -> None:
    asking = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name.startswith(ALLOWED):
                continue
            asking += [f"{name}:{line}: {what}" for line, what in engine_questions(path.read_text(encoding="utf-8"))]
    assert asking == []
