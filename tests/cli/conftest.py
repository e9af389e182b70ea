from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mrod.cli import main
from mrod.infra.config import load
from tests.harness import postgres


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def config_file(tmp_path: Path, database: dict[str, str]) -> Path:
    path = tmp_path / "mrod.toml"
    postgresql = "".join(f'{key} = "{database[key]}"\n' for key in ("url", "password_file") if key in database)
    path.write_text(
        '[database]\npath = "var/mrod.db"\n' + postgresql +
        '[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n'
        '[admin]\nlisten = "127.0.0.1:0"\n'
    )
    return path


@pytest.fixture
def mrod(config_file: Path, capsys: pytest.CaptureFixture[str]):
    """Run the CLI in-process: mrod("domain", "add", ...) -> Result."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(["--config", str(config_file), *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def ready(mrod):
    """An initialised database with relay 'primary' and domain example.com (with subdomains)."""
    assert mrod("init").code == 0
    assert mrod("relay", "add", "primary", "--host", "mx1.example.net", "--tls", "encrypt").code == 0
    assert mrod("domain", "add", "example.com", "--relay", "primary", "--subdomains").code == 0
    return mrod


@pytest.fixture
def mrod_proc(config_file: Path):
    """Run the CLI as a real process: mrod_proc(args..., input=...) -> Result."""

    def run(*args: str, input: str | None = None, timeout: float = 60) -> Result:
        proc = subprocess.run([sys.executable, "-m", "mrod", "--config", str(config_file), *args],
                              input=input, capture_output=True, text=True, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def dump(config_file: Path) -> list[str]:
    """Everything in the database, to prove a refused command changed nothing."""
    url = load(config_file).database.url
    if url:
        return postgres.dump(url)
    with sqlite3.connect(config_file.parent / "var" / "mrod.db") as conn:
        return list(conn.iterdump())
