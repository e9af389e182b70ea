"""Benchmark data: domain names, the key file, and an mrod database built with mrod's own
code (``mrod.entities.domainimport.bulk_add``, what ``mrod domain import`` runs).

Names are deterministic and look like real ones: mostly ``word1234.tld``, some with three
labels (``shop12.example.co.uk``) so the parent-domain lookups that mrod does for every key
are exercised. Misses have the same shape as hits (the same generator, indexes past the end),
so no map can tell them apart cheaply.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mrod.infra import db
from mrod.entities import domainimport, relays
from mrod.entities.audit import Actor
from mrod.infra.errors import NotFound

from . import env

ACTOR = Actor(name="bench", origin="cli", remote="local")
RELAY = "primary"
_WORDS = ("mail", "shop", "news", "acme", "blue", "north", "data", "cloud", "home", "media")
_TLDS = ("com", "net", "org", "de", "nl", "fr", "io", "example.co.uk", "example.com.au", "info")
BATCH = 100_000   # domains per bulk_add transaction (one import of 100k is typical; 1M is ten)


def domain_name(i: int) -> str:
    return f"{_WORDS[i % len(_WORDS)]}{i}.{_TLDS[(i // len(_WORDS)) % len(_TLDS)]}"


def names(count: int, start: int = 0) -> Iterator[str]:
    return (domain_name(i) for i in range(start, start + count))


def keys(domain_count: int, key_count: int, seed: int = 2) -> list[str]:
    """key_count keys, half existing domains and half not, shuffled (the same for every map)."""
    rng = random.Random(seed)
    hits = [domain_name(i) for i in rng.sample(range(domain_count), key_count // 2)]
    misses = [domain_name(domain_count + i) for i in rng.sample(range(domain_count * 2), key_count - len(hits))]
    result = hits + misses
    rng.shuffle(result)
    return result


def write_keys(path: Path, keys_: list[str]) -> Path:
    path.write_text("".join(k + "\n" for k in keys_))
    return path


async def build(path: Path, count: int, start: int = 0) -> float:
    """Create an mrod database at ``path`` with ``count`` domains on one relay; returns the
    seconds bulk_add took (strict, audited: the same code as ``mrod domain import``)."""
    loop = asyncio.get_running_loop()
    async with db.opened(path, create=True) as conn:
        try:
            await relays.get(conn, RELAY)
        except NotFound:
            await relays.add(conn, ACTOR, name=RELAY, host="mx1.example.net", port=25)
        started = loop.time()
        done = 0
        while done < count:
            part = min(BATCH, count - done)
            await domainimport.bulk_add(conn, ACTOR, names(part, start + done), relay=RELAY, source="api")
            done += part
        return loop.time() - started


def build_sync(path: Path, count: int) -> float:
    return asyncio.run(build(path, count))


@contextmanager
def database(name: str, count: int, db_path: Path | None = None) -> Iterator[Path]:
    """``db_path`` when given (a database another benchmark built); else a fresh database of
    ``count`` domains in a scratch directory, removed afterwards."""
    if db_path is not None:
        yield db_path
        return
    work = env.scratch(name)
    try:
        path = work / "mrod.db"
        build_sync(path, count)
        yield path
    finally:
        shutil.rmtree(work, ignore_errors=True)
