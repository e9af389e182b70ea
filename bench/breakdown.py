"""Where one lookup's time goes inside lookupd, without sockets: each layer called in a tight
loop over the benchmark keys (half hits) on a database of ``--domains`` domains.

- ``os.stat`` of the database path (StoreHolder checks the file was not replaced, per lookup),
- the SQL query alone (``RouteStore.domains_named`` for the key and its parent domains),
- ``PRAGMA data_version`` (what an answer cache would have to ask on every lookup to see
  commits at once),
- ``routing.answer`` (normalising the key, matching, the Answer),
- ``LookupService.answer_now`` (the store check, decoding, counting, latency metrics),
- ``LookupService.reply_now`` (issue 23: the same, answered by the precomputed replies and
  encoded — what the handler calls now),
- the socketmap codec (decode a netstring, split the request, encode the reply),
- a whole request through ``SocketmapConnection.data_received`` — lookupd's own protocol
  handler on a transport that only collects what it is given (no system calls): the
  difference to the layers below it is the per-request cost of the handler itself.

µs per call, median of ``--repeats`` passes. Kernel and scheduling costs (the round trip over
loopback, waking Postfix) come on top: see bench.maps, whose floor rows measure them.

    .venv/bin/python -m bench.breakdown [--domains 100000] [--keys 20000] [--repeats 5]
    .venv/bin/python -m bench.breakdown --baseline TREE [--rounds 5]   # before/after a change
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, cast

from mrod.lookupd import socketmap
from mrod.lookupd.servers import Limits, Listener, SocketmapConnection
from mrod.lookupd.service import LookupService
from mrod.infra import names
from mrod.answers import routing
from mrod.answers.routestore import RouteStore
from mrod.answers.snapshot import RouteSnapshot

from . import dataset, env


class CollectingTransport(asyncio.Transport):
    """Takes what the handler writes and keeps the last reply; makes no system calls."""

    def __init__(self) -> None:
        super().__init__()
        self.last = b""
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.last = data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _per_call_us(fn: Callable[[], Any], calls: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(env.median(times) / calls * 1e6, 2)


async def _measure(db_path: Path, keys: list[str], repeats: int) -> dict[str, float]:
    n = len(keys)
    store = RouteStore.open(db_path)
    service = LookupService(db_path, routing.Options())
    listener = Listener("socketmap", "127.0.0.1:0", lambda _l: None, Limits(), set())  # type: ignore[arg-type,return-value]
    conn = SocketmapConnection(listener, service)
    transport = CollectingTransport()
    conn.connection_made(transport)
    # Since issue 10 lookupd answers from a snapshot loaded in the background: wait for it, so
    # the in-memory path is measured (a tree without one has no snapshot_domains).
    if hasattr(service, "snapshot_domains"):
        for _ in range(3000):
            service.answer_now("relay_domains", b"warm-up.invalid")
            if service.snapshot_domains is not None:
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("the snapshot did not load")
    candidates = [[k, *names.parent_domains(k)] for k in keys]
    raw = [k.encode() for k in keys]
    requests = [socketmap.encode(b"relay_domains " + k) for k in raw]
    path = str(db_path)

    def handler() -> None:
        for r in requests:
            conn.data_received(r)
            if not transport.last:
                raise RuntimeError("the handler did not answer at once")

    def codec() -> None:
        decoder = socketmap.NetstringDecoder()
        for r in requests:
            decoder.feed(r)
            name, key = socketmap.parse_request(decoder.next())  # type: ignore[arg-type]
            socketmap.encode_reply("OK", name)
            decoder.next()

    layers = {
        "os.stat of the database": lambda: [os.stat(path) for _ in keys],
        "SQL query (RouteStore.domains_named)": lambda: [store.domains_named(c) for c in candidates],
        # What an answer cache invalidated by PRAGMA data_version would pay on every lookup.
        "PRAGMA data_version": lambda: [store.conn.execute("PRAGMA data_version").fetchone() for _ in keys],
        "routing.answer": lambda: [routing.answer(store, "relay_domains", k) for k in keys],
        "LookupService.answer_now": lambda: [service.answer_now("relay_domains", k) for k in raw],
        # Since issue 23: the encoded reply, from the snapshot's precomputed replies.
        **({"LookupService.reply_now (precomputed, encoded)": lambda: [
            service.reply_now("relay_domains", k, socketmap.encode_reply) for k in raw]}
           if hasattr(service, "reply_now") else {}),
        **({
            "freshness check + store (StoreHolder.get)": lambda: [service._stores.get() for _ in keys],
            "routing.answer over the snapshot": lambda: [
                routing.answer(cast(RouteSnapshot, service._stores.snapshot), "relay_domains", k) for k in keys],
        } if hasattr(service, "snapshot_domains") else {}),
        "socketmap codec (decode + encode)": codec,
        "whole request: SocketmapConnection.data_received": handler,
    }
    try:
        result = {name: _per_call_us(fn, n, repeats) for name, fn in layers.items()}
    finally:
        conn.connection_lost(None)
        service.close()
        store.close()
    below = (result.get("LookupService.reply_now (precomputed, encoded)", result["LookupService.answer_now"])
             + result["socketmap codec (decode + encode)"])
    result["handler's own share (whole request - answer_now - codec)"] = round(
        result["whole request: SocketmapConnection.data_received"] - below, 2)
    return result


def run(domains: int = 100_000, keys: int = 20_000, repeats: int = 5, db_path: Path | None = None) -> dict[str, Any]:
    with dataset.database("breakdown", domains, db_path) as path:
        us = asyncio.run(_measure(path, dataset.keys(domains, keys), repeats))
    return {"command": f".venv/bin/python -m bench.breakdown --domains {domains} --keys {keys} --repeats {repeats}",
            "domains": domains, "keys": keys, "us_per_call": us}


def compare(tree: Path, domains: int, keys: int, repeats: int, rounds: int) -> dict[str, Any]:
    """This tree against another source tree (e.g. before a change), ``rounds`` alternating
    runs of each in fresh processes on one database; per layer the median over the rounds."""
    work = env.scratch("breakdown")
    db_path = work / "mrod.db"
    dataset.build_sync(db_path, domains)
    args = ["-m", "bench.breakdown", "--domains", str(domains), "--keys", str(keys), "--repeats", str(repeats),
            "--db", str(db_path)]
    found: dict[str, list[dict[str, float]]] = {"this tree": [], str(tree): []}
    try:
        for _ in range(rounds):
            for label, cwd, extra in (("this tree", env.ROOT, {}), (str(tree), tree, {"PYTHONPATH": str(env.ROOT)})):
                # cwd comes first on sys.path: mrod and lookupd are imported from it; bench
                # itself from this tree (PYTHONPATH).
                out = subprocess.run([env.PYTHON, *args], cwd=cwd, env=dict(os.environ, **extra),
                                     capture_output=True, check=True, text=True)
                found[label].append(json.loads(out.stdout)["us_per_call"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "command": f".venv/bin/python -m bench.breakdown --domains {domains} --keys {keys} --repeats {repeats}"
                   f" --baseline {tree} --rounds {rounds}",
        "us_per_call": {label: {layer: round(env.median([r[layer] for r in runs]), 2) for layer in runs[0]}
                        for label, runs in found.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--db", type=Path, help="use this mrod database (built with bench.dataset)")
    ap.add_argument("--baseline", type=Path, metavar="TREE", help="compare with the lookupd of this source tree")
    ap.add_argument("--rounds", type=int, default=5, help="alternating runs per tree with --baseline")
    args = ap.parse_args()
    if args.baseline:
        result = compare(args.baseline.resolve(), args.domains, args.keys, args.repeats, args.rounds)
    else:
        result = run(args.domains, args.keys, args.repeats, args.db)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
