"""lookupd's listeners over real sockets: answers, concurrency, limits, faults."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest

from mrod.infra import db
from mrod.entities import domains
from tests.data import ACTOR


async def test_socketmap_answers_every_map(lookupd_factory, connect) -> None:
    d = await lookupd_factory()
    c = await connect(d.listener("socketmap").port)
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    assert await c.ask("relay_domains", "a.example.com") == "OK example.com"
    assert await c.ask("relay_domains", "example.org") == "NOTFOUND "
    assert await c.ask("transport", "User+x@Example.COM") == "OK relay:[mx1.example.net]:25"
    assert await c.ask("transport", "*") == "NOTFOUND "
    assert await c.ask("relay_recipients", "joe+tag@listed.example") == "OK joe@listed.example"
    assert await c.ask("relay_recipients", "bob@listed.example") == "NOTFOUND "
    assert await c.ask("tls_policy", "[mx1.example.net]:25") == "OK encrypt"
    assert (await c.ask("no_such_map", "x")).startswith("TEMP ")
    assert await c.ask("relay_domains", b"\xff\xfe.example") == "NOTFOUND "
    await c.close()


async def test_pipelined_and_byte_by_byte(lookupd_factory, connect) -> None:
    d = await lookupd_factory()
    c = await connect(d.listener("socketmap").port)
    wire = b"".join(b"%d:relay_domains d%d.example.org," % (len(f"relay_domains d{i}.example.org"), i)
                    for i in range(50))
    c.writer.write(wire)
    replies = [await c.reply() for _ in range(50)]
    assert replies == ["NOTFOUND "] * 50
    for byte in b"25:relay_domains example.com,":
        c.writer.write(bytes([byte]))
        await c.writer.drain()
    assert await c.reply() == "OK example.com"
    await c.close()


async def test_tcp_table(lookupd_factory) -> None:
    d = await lookupd_factory()
    r, w = await asyncio.open_connection("127.0.0.1", d.listener("tcp_table relay_domains").port)
    w.write(b"get example.com\nget nope.example\nget Sub.Example.COM\n")
    assert [await r.readline() for _ in range(3)] == [b"200 example.com\n", b"500 not-found\n", b"200 example.com\n"]
    r2, w2 = await asyncio.open_connection("127.0.0.1", d.listener("tcp_table transport").port)
    w2.write(b"get a%20b@example.com\nget *\n")
    assert [await r2.readline() for _ in range(2)] == [b"200 relay:[mx1.example.net]:25\n", b"500 not-found\n"]
    w2.write(b"put x y\n")
    assert (await r2.readline()).startswith(b"400 ")
    assert await r2.read() == b""   # closed after a protocol error
    w.write(b"get example.com\n")     # the other connection is unaffected
    assert await r.readline() == b"200 example.com\n"
    for writer in (w, w2):
        writer.close()


async def test_next_lookup_sees_a_committed_change(lookupd_factory, connect) -> None:
    d = await lookupd_factory()
    c = await connect(d.listener("socketmap").port)
    assert await c.ask("relay_domains", "new.example") == "NOTFOUND "
    async with db.opened(d.config.database.path) as conn:
        for i in range(20):
            name = f"new{i}.example"
            await domains.add(conn, ACTOR, name, relay="primary")
            assert await c.ask("relay_domains", name) == f"OK {name}"
            await domains.update(conn, ACTOR, name, enabled=False)
            assert await c.ask("relay_domains", name) == "NOTFOUND "
    await c.close()


@pytest.mark.parametrize(
    "garbage",
    [b"abc:relay_domains x,", b"5:abcdeX", b"99999999999999:", b"3:abc\n", b"0:,", b"\r\n"],
)
async def test_malformed_input_closes_only_that_connection(lookupd_factory, connect, garbage: bytes) -> None:
    d = await lookupd_factory()
    port = d.listener("socketmap").port
    good = await connect(port)
    bad = await connect(port)
    bad.writer.write(garbage)
    assert await bad.closed_by_server()
    assert await good.ask("relay_domains", "example.com") == "OK example.com"
    await good.close()


async def test_oversized_request_is_refused(lookupd_factory, connect) -> None:
    d = await lookupd_factory()
    port = d.listener("socketmap").port
    bad = await connect(port)
    bad.writer.write(b"10001:relay_domains " + b"a" * 9986)
    assert await bad.closed_by_server()
    # the largest allowed request is answered
    ok = await connect(port)
    assert await ok.ask("relay_domains", "a" * (10000 - len("relay_domains "))) == "NOTFOUND "
    await ok.close()


async def test_slow_client_is_cut_off_and_others_are_served(lookupd_factory, connect) -> None:
    d = await lookupd_factory(request_timeout=0.5)
    port = d.listener("socketmap").port
    slow = await connect(port)
    fast = await connect(port)
    closed = False
    for byte in b"25:relay_domains example.com,"[:10]:   # bounded: at most 10 bytes, ~2 s
        try:
            slow.writer.write(bytes([byte]))
            await slow.writer.drain()
        except ConnectionError:
            closed = True
            break
        assert await fast.ask("relay_domains", "example.com") == "OK example.com"
        await asyncio.sleep(0.2)
    assert closed or await slow.closed_by_server()
    await fast.close()


async def test_many_idle_connections_do_not_block_others(lookupd_factory, connect) -> None:
    d = await lookupd_factory()
    port = d.listener("socketmap").port
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(500)]
    busy = [await connect(port) for _ in range(10)]
    answers = await asyncio.gather(*(c.ask("relay_domains", f"x{i}.example.com") for i, c in enumerate(busy)))
    assert answers == ["OK example.com"] * 10
    assert len(d.connections) == 510
    for _, w in idle:
        w.close()
    for c in busy:
        await c.close()


async def test_idle_connections_are_closed(lookupd_factory, connect) -> None:
    d = await lookupd_factory(idle_timeout=0.3)
    c = await connect(d.listener("socketmap").port)
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    assert await c.closed_by_server()


async def test_connection_cap(lookupd_factory, connect) -> None:
    d = await lookupd_factory(max_connections=5)
    port = d.listener("socketmap").port
    kept = [await connect(port) for _ in range(5)]
    await asyncio.gather(*(c.ask("relay_domains", "example.com") for c in kept))
    extra = await connect(port)
    assert await extra.closed_by_server()
    assert await kept[0].ask("relay_domains", "example.com") == "OK example.com"
    for c in kept:
        await c.close()


async def test_concurrent_clients_get_their_own_answers(lookupd_factory, connect) -> None:
    d = await lookupd_factory()
    port = d.listener("socketmap").port

    async def client(n: int) -> list[str]:
        c = await connect(port)
        out = [await c.ask("transport", f"u{n}-{i}@s{n}.example.com" if i % 2 else f"u{n}@x{n}.example.org")
               for i in range(20)]
        await c.close()
        return out

    results = await asyncio.gather(*(client(n) for n in range(40)))
    for out in results:
        assert out == ["NOTFOUND ", "OK relay:[mx1.example.net]:25"] * 10


async def test_unix_socket_endpoint(lookupd_factory, tmp_path) -> None:
    path = tmp_path / "sm.sock"
    d = await lookupd_factory(socketmap=f"unix:{path}", tcp_table={})
    assert oct(os.stat(path).st_mode & 0o777) == "0o666"
    r, w = await asyncio.open_unix_connection(str(path))
    w.write(b"25:relay_domains example.com,")
    assert await r.readexactly(len(b"14:OK example.com,")) == b"14:OK example.com,"
    w.close()
    await d.stop()
    assert not path.exists()


# -- faults: TEMP, never NOTFOUND ----------------------------------------------------------------


async def test_missing_database_answers_temp(lookupd_factory, connect) -> None:
    d = await lookupd_factory()
    c = await connect(d.listener("socketmap").port)
    os.rename(d.config.database.path, str(d.config.database.path) + ".away")
    assert (await c.ask("relay_domains", "example.com")).startswith("TEMP ")
    assert (await c.ask("relay_domains", "nope.example")).startswith("TEMP ")
    os.rename(str(d.config.database.path) + ".away", d.config.database.path)
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    await c.close()


async def test_replaced_by_a_corrupt_file_answers_temp(lookupd_factory, connect, tmp_path) -> None:
    d = await lookupd_factory()
    c = await connect(d.listener("socketmap").port)
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    path = d.config.database.path
    good = tmp_path / "good.db"
    with sqlite3.connect(path) as src, sqlite3.connect(good) as dst:
        src.backup(dst)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    os.replace(corrupt, path)
    for key in ("example.com", "nope.example"):
        assert (await c.ask("relay_domains", key)).startswith("TEMP ")
    tr = await connect(d.listener("socketmap").port)
    assert (await tr.ask("transport", "a@example.com")).startswith("TEMP ")
    os.replace(good, path)
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    await c.close()
    await tr.close()


def _hold_exclusive_lock(path) -> sqlite3.Connection:
    """Another connection holding the database exclusively: in WAL mode only
    locking_mode=EXCLUSIVE plus a write keeps readers out."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE relay SET updated_at = updated_at")
    return holder


async def test_locked_database_answers_temp_after_the_deadline(lookupd_factory, connect) -> None:
    d = await lookupd_factory(lookup_deadline=0.3)
    c = await connect(d.listener("socketmap").port)
    other = await connect(d.listener("socketmap").port)
    d.service.close()   # make the next lookup open the file while it is locked
    holder = await asyncio.to_thread(_hold_exclusive_lock, d.config.database.path)
    try:
        results = await asyncio.gather(c.ask("relay_domains", "example.com"),
                                       other.ask("transport", "a@example.com"))
        assert all(r.startswith("TEMP ") for r in results), results
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    await c.close()
    await other.close()


async def test_lookup_waits_for_a_short_lock(lookupd_factory, connect) -> None:
    d = await lookupd_factory(lookup_deadline=5)
    c = await connect(d.listener("socketmap").port)
    d.service.close()
    holder = await asyncio.to_thread(_hold_exclusive_lock, d.config.database.path)
    pending = asyncio.ensure_future(c.ask("relay_domains", "example.com"))
    await asyncio.sleep(0.3)
    assert not pending.done()
    holder.execute("ROLLBACK")
    holder.close()
    assert await pending == "OK example.com"
    await c.close()
