"""The policy decision's cost (issue 23.3): Postfix policy requests through lookupd's policy
listener, decided from memory (now) against from the database (the path every request took
before: ``--path database`` turns the memory path off in the same build).

A SQLite database of ``--domains`` plain domains on one relay in ``when_primary_up = defer``
with this node's health up (so every request runs the whole primary-up step), and one paused
and one quota domain that the memory path leaves to the database. lookupd runs in a child
process (this module's ``serve``); the client sends ``--requests`` RCPT requests (~25
attributes each, as smtpd sends them; recipients of random domains, 1 in 10 not ours) over one
connection, then over ``--clients`` connections at once (threads). The two paths alternate,
``--rounds`` times each; medians, the ratio, and lookupd's CPU per request.

    .venv/bin/python -m bench.policy_cost [--domains 100000] [--requests 20000] [--clients 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mrod.infra import db

from . import env

ATTRS = ("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=198.51.100.7\n"
         "client_name=mail.sender.example\nclient_port=53122\nreverse_client_name=mail.sender.example\n"
         "server_address=127.0.0.1\nserver_port=25\nhelo_name=mail.sender.example\nsender=a@sender.example\n"
         "queue_id=\ninstance=1234.5678.9abc.0\nsize=2048\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\n"
         "sasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"
         "encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n"
         "policy_context=\ncompatibility_level=3.6\nmail_version=3.7.11\n")


def build(path: Path, domains: int) -> None:
    async def init() -> None:
        async with db.opened(path, create=True):
            pass
    asyncio.run(init())
    stamp = db.stamp(datetime.now(timezone.utc))
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO relay (id, name, host, port, when_primary_up, created_at, updated_at)"
                    " VALUES (1, 'primary', '127.0.0.1', 2525, 'defer', 't', 't')")
        raw.executemany("INSERT INTO domain (name, relay_id, created_at, updated_at) VALUES (?, 1, 't', 't')",
                        ((f"d{i}.example",) for i in range(domains)))
        raw.execute("UPDATE domain SET paused = 1 WHERE name = 'd0.example'")
        raw.execute("UPDATE domain SET quota_messages = 1000 WHERE name = 'd1.example'")
        raw.execute("INSERT INTO relay_health (relay_id, node, state, last_probe_at) VALUES (1, 'bench', 'up', ?)",
                    (stamp,))


def serve(config: Path, path: str) -> None:
    """The child: lookupd with the policy listener; ``database``: the memory path off."""
    from mrod.infra import config as configmod
    from mrod.lookupd.daemon import Lookupd, wait_for_signal

    async def main() -> None:
        daemon = Lookupd(configmod.load(config, env={}))
        if path == "database":
            daemon.policy.routes = None
        await daemon.start()
        print(daemon.listener("policy").port, flush=True)
        await wait_for_signal()
        await daemon.stop()

    asyncio.run(main())


def _ask_many(port: int, requests: list[bytes]) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        for request in requests:
            sock.sendall(request)
            while b"\n\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("lookupd closed the connection")
                buf += chunk
            reply, _, buf = buf.partition(b"\n\n")
            if not reply.startswith(b"action="):
                raise AssertionError(reply)
    finally:
        sock.close()


def _run(port: int, requests: list[bytes], clients: int) -> float:
    parts = [requests[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=_ask_many, args=(port, part)) for part in parts]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def measure(workdir: Path, path: str, requests: list[bytes], clients: int) -> dict[str, float]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.policy_cost", "serve", str(workdir / "mrod.toml"), path],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        _run(port, requests[:2000], 1)                  # warm: the snapshot loaded, health read
        time.sleep(1.5)
        _run(port, requests[:2000], 1)
        cpu0 = env.cpu_seconds(proc.pid)
        one = _run(port, requests, 1)
        cpu1 = env.cpu_seconds(proc.pid)
        many = _run(port, requests, clients)
        cpu2 = env.cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    n = len(requests)
    return {"one_per_s": n / one, "many_per_s": n / many, "cpu_us_one": (cpu1 - cpu0) / n * 1e6,
            "cpu_us_many": (cpu2 - cpu1) / n * 1e6}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    workdir = env.scratch("policy_cost")
    build(workdir / "mrod.db", args.domains)
    (workdir / "mrod.toml").write_text(
        f'[database]\npath = "{workdir / "mrod.db"}"\n[node]\nname = "bench"\nstate_dir = "{workdir}"\n'
        f'[lookupd]\nsocketmap = ""\npolicy = "127.0.0.1:{env.free_port()}"\n')
    rng = random.Random(7)
    requests = [(ATTRS + f"recipient=u{i}@" + (f"d{rng.randrange(2, args.domains)}.example" if i % 10
                                                   else "elsewhere.example") + "\n\n").encode()
                for i in range(args.requests)]
    found: dict[str, list[dict[str, float]]] = {"memory": [], "database": []}
    for _ in range(args.rounds):
        for path in ("memory", "database"):          # interleaved: the machine's load hits both alike
            found[path].append(measure(workdir, path, requests, args.clients))
    result: dict[str, Any] = {"machine": env.machine(), "args": vars(args)}
    for path, runs in found.items():
        result[path] = {k: round(env.median([r[k] for r in runs]), 1) for k in runs[0]}
    result["ratio_memory_over_database"] = {
        k: round(result["memory"][k] / result["database"][k], 2) for k in result["memory"]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
