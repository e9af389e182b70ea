"""The PostgreSQL engine: configuration, the connection adapter the repository modules use,
and the rule that a password never reaches a message or a log."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from mrod.cli import main
from mrod.entities import relays
from mrod.entities.audit import Actor
from mrod.infra import config as configmod
from mrod.infra import db, pgconn
from mrod.infra.engine import Target, redact
from mrod.infra.errors import ConfigError, Conflict, DatabaseNotReady, DatabaseUnreachable, IntegrityViolation
from tests.harness import free_port
from tests.harness.postgres import Cluster

SYSTEM = Actor.system("test")


@pytest.mark.parametrize("sqlite, postgresql", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("UPDATE t SET a = :a WHERE id = :id", "UPDATE t SET a = %(a)s WHERE id = %(id)s"),
    ("SELECT '?', ':x', \"a?b\" FROM t WHERE n LIKE '%' || ? -- why?", "SELECT '?', ':x', \"a?b\" FROM t WHERE n"
     " LIKE '%%' || %s -- why?"),
    ("SELECT 'it''s ?' , x::text FROM t", "SELECT 'it''s ?' , x::text FROM t"),
])
def test_placeholders_are_translated_outside_literals(sqlite: str, postgresql: str) -> None:
    assert pgconn.translate(sqlite) == postgresql


def test_database_keys_and_their_errors(tmp_path: Path) -> None:
    cfg = configmod.from_dict({"database": {"url": "postgresql://mrod@db.example/mrod",
                                            "password_file": "/etc/mrod/db-password"}}, base_dir=tmp_path)
    assert Target.of(cfg.database) == Target(url="postgresql://mrod@db.example/mrod",
                                            password_file="/etc/mrod/db-password")
    assert Target.of(configmod.from_dict({}, base_dir=tmp_path).database).engine == "sqlite"
    env = {"MROD_DATABASE_URL": "postgresql://other@db2.example/mrod"}
    assert configmod.from_dict({}, env=env, base_dir=tmp_path).database.url == env["MROD_DATABASE_URL"]
    with pytest.raises(ConfigError) as bad:
        configmod.from_dict({"database": {"url": "mysql://root:hunter2@db/mrod"}}, base_dir=tmp_path)
    assert str(bad.value).startswith("database.url: must be a postgresql:// URL") and "hunter2" not in str(bad.value)
    with pytest.raises(ConfigError, match="database.password_file: must be an absolute path"):
        configmod.from_dict({"database": {"password_file": "pw"}}, base_dir=tmp_path)


def test_redact_drops_every_password() -> None:
    assert redact("postgresql://mrod:s3cr%40t@db.example:5432/mrod?sslmode=require") == \
        "postgresql://mrod@db.example:5432/mrod?sslmode=require"
    assert redact("postgresql://db.example/mrod?user=m&password=s3cret&sslmode=verify-full") == \
        "postgresql://db.example/mrod?user=m&password=***&sslmode=verify-full"
    assert redact("postgresql://mrod@db.example/mrod") == "postgresql://mrod@db.example/mrod"


def _write_config(tmp_path: Path, url: str, password_file: str = "") -> Path:
    path = tmp_path / "mrod.toml"
    extra = f'password_file = "{password_file}"\n' if password_file else ""
    path.write_text(f'[database]\nurl = "{url}"\n{extra}[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n'
                    '[admin]\nlisten = "127.0.0.1:0"\n')
    return path


def _run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_password_never_shows_in_errors_or_logs(tmp_path: Path, pg_database: tuple[Cluster, str],
                                                  capsys: pytest.CaptureFixture[str],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    server, name = pg_database
    caplog.set_level(logging.DEBUG)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password-4711\n")
    code, out, err = _run(_write_config(tmp_path, server.url(name), str(wrong)), capsys, "domain", "list")
    assert code == 1 and err.startswith("mrod: error: database postgresql://mrod@127.0.0.1:") and err.count("\n") == 1
    assert "password authentication failed" in err
    # In the URL itself: it works, and a failure names the database without it.
    inline = server.url(name).replace("mrod@", f"mrod:{server.password}@")
    code, out, err = _run(_write_config(tmp_path, inline), capsys, "relay", "add", "p", "--host", "mx.example.net")
    assert code == 0, err
    absent = inline.rsplit("/", 1)[0] + "/nosuchdb"
    code, out, err = _run(_write_config(tmp_path, absent), capsys, "domain", "list")
    assert code == 1 and 'database "nosuchdb" does not exist' in err
    assert f"postgresql://mrod@127.0.0.1:{server.port}/nosuchdb" in err
    code, out, err = _run(_write_config(tmp_path, absent), capsys, "lookup", "relay_domains", "example.com")
    assert code == 75 and out.startswith("TEMP ")
    everything = out + err + caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert server.password not in everything and "not-the-password-4711" not in everything


def test_an_unreachable_database_is_a_clear_error_and_lookups_are_temp(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_config(tmp_path, f"postgresql://mrod@127.0.0.1:{free_port()}/mrod")
    code, out, err = _run(config, capsys, "domain", "add", "shop.example", "--host", "mx.example.net")
    assert code == 1 and err.startswith("mrod: error: database postgresql://mrod@127.0.0.1:")
    assert "cannot be used" in err and err.count("\n") == 1
    code, out, err = _run(config, capsys, "lookup", "relay_domains", "shop.example")
    assert code == 75 and out.startswith("TEMP ")
    code, out, err = _run(_write_config(tmp_path, "postgresql://mrod@127.0.0.1/mrod", "/nonexistent/pw"), capsys,
                          "init")
    assert code == 1 and err.strip().startswith("mrod: error: database.password_file /nonexistent/pw cannot be read:"
                                                " No such file or directory (config ")


async def test_rows_parameters_and_constraint_errors_read_as_on_sqlite(pg_database: tuple[Cluster, str]) -> None:
    server, name = pg_database
    conn = await db.connect(Target(url=server.url(name), password_file=str(server.password_file)))
    try:
        async with conn.execute("SELECT ? AS flag, ? AS n, sum(x) AS total, ? AS nul"
                                " FROM (VALUES (1), (2)) v(x)", (True, 7, "a\x00b")) as cur:
            row = await db.one_row(cur)
        assert (row["flag"], row[1], row["total"], row.keys()) == (1, 7, 3, ["flag", "n", "total", "nul"])
        assert isinstance(row["total"], int) and row["nul"] == "a\ufffdb"     # PostgreSQL's text holds no NUL
        await relays.add(conn, SYSTEM, name="primary", host="mx1.example.net")
        with pytest.raises(Conflict, match="already exists"):
            await relays.add(conn, SYSTEM, name="PRIMARY", host="mx2.example.net")   # NOCASE, as on SQLite
        assert not conn.in_transaction
        with pytest.raises(IntegrityViolation, match="^CHECK constraint failed"):
            await conn.execute("UPDATE relay SET port = 0")
    finally:
        await conn.close()


async def test_writers_take_turns_as_on_sqlite(pg_database: tuple[Cluster, str]) -> None:
    """BEGIN IMMEDIATE holds every other writer until COMMIT (the check-then-write code relies
    on it), on PostgreSQL through an advisory lock."""
    server, name = pg_database
    target = Target(url=server.url(name), password_file=str(server.password_file))
    first, second = await db.connect(target), await db.connect(target)
    try:
        async with db.transaction(first):
            await first.execute("INSERT INTO relay (name, host, created_at, updated_at) VALUES ('a', 'h', '', '')")

            async def write() -> None:
                async with db.transaction(second):
                    await second.execute("UPDATE relay SET host = 'h2'")

            waiting = asyncio.create_task(write())
            await asyncio.sleep(0.3)
            assert not waiting.done()
        await asyncio.wait_for(waiting, 10)
        async with second.execute("SELECT host FROM relay") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["h2"]
    finally:
        await first.close()
        await second.close()


def test_a_lost_server_is_database_not_ready(tmp_path: Path) -> None:
    async def attempt() -> None:
        await db.connect(f"postgresql://mrod@127.0.0.1:{free_port()}/mrod")

    with pytest.raises(DatabaseNotReady, match="^database postgresql://mrod@127.0.0.1:[0-9]+/mrod cannot be used: "):
        asyncio.run(attempt())


def test_an_sqlite_installation_needs_no_psycopg(tmp_path: Path) -> None:
    """psycopg (and libpq under it) load only for a PostgreSQL URL."""
    config = tmp_path / "mrod.toml"
    config.write_text('[database]\npath = "mrod.db"\n[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n')
    script = (
        "import sys\n"
        "sys.modules['psycopg'] = None  # any import of it now fails\n"
        "from mrod.cli import main\n"
        f"cfg = {str(config)!r}\n"
        "for args in (['init'], ['relay', 'add', 'p', '--host', 'mx.example.net'],\n"
        "             ['domain', 'add', 'shop.example', '--relay', 'p'], ['lookup', 'relay_domains', 'shop.example']):\n"
        "    assert main(['--config', cfg, *args]) == 0, args\n"
        "print('ok', 'psycopg' in sys.modules and sys.modules['psycopg'] is not None)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok False") and "OK shop.example" in done.stdout


async def test_lists_sort_alike_on_both_engines(conn, actor, engine: str) -> None:
    """NULLs (a domain without a relay) sort first ascending, last descending, as on SQLite;
    names sort by bytes (hyphen before letters); relay names sort without case."""
    from mrod.entities import domains

    await relays.add(conn, actor, name="beta", host="mx2.example.net")
    await relays.add(conn, actor, name="Alpha", host="mx1.example.net")
    await domains.add(conn, actor, "c.example", relay="beta")
    await domains.add(conn, actor, "a-b.example", relay="Alpha")
    await domains.add(conn, actor, "ab.example", host="192.0.2.1")
    ascending = await domains.search(conn, sort="relay")
    assert [d.name for d in ascending.domains] == ["ab.example", "a-b.example", "c.example"]
    descending = await domains.search(conn, sort="relay", descending=True)
    assert [d.name for d in descending.domains] == ["c.example", "a-b.example", "ab.example"]
    by_name = await domains.search(conn)
    assert [d.name for d in by_name.domains] == ["a-b.example", "ab.example", "c.example"]
    assert [r.name for r in await relays.list_all(conn)] == ["Alpha", "beta"]


def test_an_absent_server_is_an_outage_a_refusal_is_a_mistake(tmp_path: Path, pg_database: tuple[Cluster, str]
                                                              ) -> None:
    """`mrod serve` rides out the first (a node restarted during an outage still answers) and
    stops on the second (a wrong password or database name is a configuration to fix)."""
    server, name = pg_database

    async def attempt(url: str, password: str | None = None) -> None:
        secret = tmp_path / "attempt-password"
        secret.write_text(f"{password}\n")
        await pgconn.Connection.open(Target(url=url, password_file=str(secret) if password else ""))

    with pytest.raises(DatabaseUnreachable):
        asyncio.run(attempt(f"postgresql://mrod@127.0.0.1:{free_port()}/mrod"))
    for url, password in ((server.url(name), "not-the-password-4711"), (server.url("nosuchdb"), server.password)):
        with pytest.raises(DatabaseNotReady) as refused:
            asyncio.run(attempt(url, password))
        assert not isinstance(refused.value, DatabaseUnreachable)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password-4711\n")
    serve = subprocess.run([sys.executable, "-m", "mrod", "--config", str(_write_config(tmp_path, server.url(name),
                                                                                        str(wrong))), "serve"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert serve.returncode == 1 and "password authentication failed" in serve.stderr
