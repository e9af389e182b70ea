"""Do lookups wait behind the panel? (issue 10) Lookup latency of a running ``mrod serve`` while
the panel renders its heaviest page in a loop — before (lookupd, panel and jobs on one event
loop) and after (lookupd in a process of its own).

For each tree: ``mrod serve`` on a database of ``--domains`` domains (jobs off); one client
process asks the socketmap sequentially for ``--seconds`` seconds (one connection, as Postfix
does) and records every lookup's latency — first with the panel idle, then while ``--pages``
panel clients, signed in, fetch the last page of the domain list in a loop. p50 / p99 / max in
milliseconds; the issue's goal: p99 added by the panel ≤ 1 ms.

    .venv/bin/python -m bench.isolation [--domains 100000] [--seconds 10] [--pages 2] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from . import dataset, env

PASSWORD = "bench password 1234"

LOOKUPS = r"""
import json, socket, sys, time
port, seconds, key = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
payload = f"relay_domains {key}".encode()
request = b"%d:%s," % (len(payload), payload)
times, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    started = time.perf_counter()
    s.sendall(request)
    reply = s.recv(200)
    times.append(time.perf_counter() - started)
    assert reply.startswith(b"%d:OK" % (len(key) + 3)), reply
    time.sleep(0.001)
times.sort()
print(json.dumps({"n": len(times), "p50_ms": round(times[len(times) // 2] * 1e3, 3),
                  "p99_ms": round(times[int(len(times) * 0.99)] * 1e3, 3), "max_ms": round(times[-1] * 1e3, 3)}))
"""

PAGES = r"""
import re, sys, time, urllib.request, urllib.parse, http.cookiejar
base, password, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = opener.open(base + "/login").read().decode()
token = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
form = {"name": "bench", "password": password, "csrf_token": token}
opener.open(base + "/login", urllib.parse.urlencode(form).encode())
count, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    body = opener.open(base + "/domains?page=" + sys.argv[4]).read()
    assert b"domains" in body
    count += 1
print(count)
"""


def serve(work: Path, db_path: Path, tree: Path | None) -> tuple[subprocess.Popen, int, int]:
    socketmap, panel = env.free_port(), env.free_port()
    config = work / f"mrod-{socketmap}.toml"
    config.write_text(f'[database]\npath = "{db_path}"\n[lookupd]\nsocketmap = "127.0.0.1:{socketmap}"\n'
                      f'policy = ""\n[admin]\nlisten = "127.0.0.1:{panel}"\nbcrypt_rounds = 4\n'
                      '[health]\nenabled = false\n[queue]\nenabled = false\n[checks]\nenabled = false\n')
    environ = dict(os.environ, PYTHONPATH=str(tree)) if tree else None
    log = open(work / f"serve-{socketmap}.log", "wb")
    proc = subprocess.Popen([env.PYTHON, "-m", "mrod", "--config", str(config), "--log-level", "WARNING", "serve"],
                            stdout=log, stderr=log, cwd=tree or env.ROOT, env=environ)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", panel), timeout=1).close()
            socket.create_connection(("127.0.0.1", socketmap), timeout=1).close()
            break
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mrod serve did not start: {(work / log.name).read_text()[-2000:]}") from exc
            time.sleep(0.1)
    time.sleep(5)   # let the snapshot load (after) and start-up settle
    return proc, socketmap, panel


def measure(port: int, panel: int, seconds: float, pages: int, key: str, last_page: int) -> dict[str, Any]:
    lookups = [env.PYTHON, "-c", LOOKUPS, str(port), str(seconds), key]
    idle = json.loads(subprocess.run(lookups, check=True, capture_output=True, text=True).stdout)
    loaders = [subprocess.Popen([env.PYTHON, "-c", PAGES, f"http://127.0.0.1:{panel}", PASSWORD, str(seconds + 2),
                                 str(last_page)],
                                stdout=subprocess.PIPE, text=True) for _ in range(pages)]
    time.sleep(1)
    busy = json.loads(subprocess.run(lookups, check=True, capture_output=True, text=True).stdout)
    pages_done = [int(p.communicate()[0] or 0) for p in loaders]
    return {"panel_idle": idle, "panel_busy": busy, "pages_rendered": sum(pages_done),
            "p99_added_ms": round(busy["p99_ms"] - idle["p99_ms"], 3)}


def run(domains: int, seconds: float, pages: int, baseline: Path | None) -> dict[str, Any]:
    work = env.scratch("isolation")
    db_path = work / "mrod.db"
    try:
        dataset.build_sync(db_path, domains)
        cli_config = work / "cli.toml"
        cli_config.write_text(f'[database]\npath = "{db_path}"\n[admin]\nbcrypt_rounds = 4\n')
        subprocess.run([env.PYTHON, "-m", "mrod", "--config", str(cli_config), "user", "add", "bench", "--admin",
                        "--password-stdin"], input=PASSWORD, text=True, check=True, capture_output=True, cwd=env.ROOT)
        result: dict[str, Any] = {
            "command": f".venv/bin/python -m bench.isolation --domains {domains} --seconds {seconds:g}"
                       f" --pages {pages}" + (f" --baseline {baseline}" if baseline else ""),
            "load_average_before": env.load_average(), "trees": {}}
        trees: list[tuple[str, Path | None]] = [("after (this tree)", None)]
        if baseline:
            trees.append((f"before ({baseline})", baseline))
        for label, tree in trees:
            path = db_path
            if tree is not None:
                # The older tree refuses a newer schema: give it a copy that says version 4 (the
                # journal table and its triggers are left in; they do not change its answers).
                path = work / "before.db"
                with sqlite3.connect(db_path) as src, sqlite3.connect(path) as dst:
                    src.backup(dst)
                    dst.execute("PRAGMA user_version = 4")
            proc, port, panel = serve(work, path, tree)
            try:
                result["trees"][label] = measure(port, panel, seconds, pages, dataset.domain_name(7),
                                                 max(1, domains // 50))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
        result["load_average_after"] = env.load_average()
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pages", type=int, default=2)
    ap.add_argument("--baseline", type=Path, metavar="TREE")
    args = ap.parse_args()
    print(json.dumps(run(args.domains, args.seconds, args.pages,
                         args.baseline.resolve() if args.baseline else None), indent=2))


if __name__ == "__main__":
    main()
