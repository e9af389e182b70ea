"""``mrod init`` makes the first admin (password printed once); ``mrod user add|passwd|set|rm|
list`` from the shell — the real CLI as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities import sessions, users
from tests.harness import postgres


@pytest.fixture
def mrod(tmp_path: Path, database: dict[str, str]):
    config = tmp_path / "mrod.toml"
    section = "".join(f'{key} = "{value}"\n' for key, value in database.items())
    config.write_text(f'[database]\n{section}[admin]\nlisten = "127.0.0.1:0"\nbcrypt_rounds = 4\n'
                      '[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mrod", "--config", str(config), *args], input=input,
                              capture_output=True, text=True, timeout=60, env=env,
                              stdin=None if input is not None else subprocess.DEVNULL)
    run.config = configmod.load(config, env={})  # type: ignore[attr-defined]
    return run


def _check(cfg, name: str, password: str) -> bool:
    async def go() -> bool:
        async with db.opened(cfg.database) as conn:
            return await users.authenticate(conn, name, password, 4) is not None
    return asyncio.run(go())


def test_init_creates_the_first_admin_once_with_a_random_password(mrod) -> None:
    first = mrod("init")
    assert first.returncode == 0, first.stderr
    found = re.search(r"password: (\S+)", first.stdout)
    assert found and len(found.group(1)) >= 16
    assert _check(mrod.config, "admin", found.group(1))
    again = mrod("init")
    assert again.returncode == 0 and "password" not in again.stdout
    # Only a bcrypt hash is kept: the password is nowhere in the database files.
    if mrod.config.database.url:
        stored = "\n".join(postgres.dump(mrod.config.database.url)).encode()
    else:
        stored = b"".join(p.read_bytes() for p in mrod.config.database.path.parent.glob("mrod.db*"))
    assert found.group(1).encode() not in stored and b"$2b$04$" in stored


@pytest.mark.both_engines
def test_user_commands(mrod) -> None:
    assert mrod("init").returncode == 0
    result = mrod("user", "add", "alice", "--perm", "domains_own", "--perm", "logs", "--password-stdin",
                  input="alice password\n")
    assert result.returncode == 0
    assert "domains_own, logs" in result.stdout
    assert _check(mrod.config, "alice", "alice password")
    # Refusals say why and change nothing.
    # Exit 2: a value given is bad; 1: refused in this state.
    for args, stdin, why, code in ((("user", "add", "bob", "--password-stdin"), "short\n", "at least 10", 2),
                                   (("user", "add", "alice", "--password-stdin"), "another password\n", "already exists", 1),
                                   (("user", "add", "b c", "--password-stdin"), "another password\n", "letters, digits", 2),
                                   (("user", "add", "bob"), None, "--password-stdin", 2),
                                   (("user", "rm", "admin"), None, "no enabled admin", 1),
                                   (("user", "passwd", "nobody", "--password-stdin"), "another password\n",
                                    "does not exist", 1)):
        result = mrod(*args, input=stdin)
        assert result.returncode == code, (args, result.stderr)
        assert why in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("mrod: error: ")
        assert result.stderr.count("\n") == 1
    listed = json.loads(mrod("user", "list", "--json").stdout)
    assert [(u["name"], u["is_admin"], u["permissions"]) for u in listed] == [
        ("admin", True, []), ("alice", False, ["domains_own", "logs"])]
    # A new password ends every session of the user.

    async def session() -> None:
        async with db.opened(mrod.config.database) as conn:
            await sessions.create(conn, 2, 1.0)
    asyncio.run(session())
    result = mrod("user", "passwd", "alice", "--password-stdin", input="a better password\n")
    assert result.returncode == 0
    assert "sessions ended" in result.stdout
    assert _check(mrod.config, "alice", "a better password")
    assert not _check(mrod.config, "alice", "alice password")

    async def count() -> int:
        async with db.opened(mrod.config.database) as conn:
            return len(await sessions.list_for(conn, 2))
    assert asyncio.run(count()) == 0
    assert mrod("user", "set", "alice", "--admin").returncode == 0
    assert mrod("user", "rm", "admin").returncode == 0
    table = mrod("user", "list").stdout.splitlines()
    assert len(table) == 2
    assert table[1].split()[:3] == ["2", "alice", "admin"]
    assert mrod("user", "set", "alice").returncode == 2
