"""Each node's lookup speed on PostgreSQL vs SQLite (issue 11, point 5): lookups must not depend
on the database's round trip.

One run, one dataset (``--domains`` domains on one relay, every tenth with subdomains), loaded
with mrod's own ``domainimport.bulk_add`` into an SQLite file and into a private PostgreSQL
(tests.harness.postgres: loopback, password, migrated schema). Two real lookupds run as
subprocesses, one on each database. ``--clients`` client processes, one socketmap connection
each (as Postfix's dict_sockmap: one request, then wait for the reply), ask a shuffled mix of
``relay_domains`` and ``transport`` keys for ``--seconds`` seconds per phase — domains, their
subdomains (found when the domain includes subdomains), addresses at them, and names that do
not exist: half hits. Every reply is compared byte for byte with what ``mrod.answers.routing``
answers from the SQLite data in this process. Phases, interleaved over ``--rounds`` rounds:

- ``sqlite``: lookupd on the SQLite file;
- ``sqlite + writes``: the same while a writer process commits ``--writes`` domain changes
  per second (``domains.add`` / ``remove``, alternating; each its own audited transaction);
- ``postgresql``: lookupd on PostgreSQL;
- ``postgresql, server frozen``: every PostgreSQL process stopped with SIGSTOP (postmaster and
  backends: a connection is accepted by the kernel and never answered — an infinite round
  trip; checked with a protocol probe that must time out);
- ``postgresql, server stopped``: ``Cluster.pause()`` (``pg_ctl stop``: connections refused);
- ``postgresql + writes``: the writer on PostgreSQL (lookupd follows by LISTEN/NOTIFY).

After each writer phase the writer adds one more domain and asks that lookupd for it until it
is answered (bounded): the delay is reported.

Figures per phase: lookups/s (all clients, medians of the rounds), latency p50/p99 as the
clients saw it (request sent to reply complete, every lookup of every round), lookupd's CPU per
lookup (user + system of the process, its PostgreSQL sync thread included, from /proc) and the
PostgreSQL server's CPU during the phase (all its processes). Ratios are to the ``sqlite`` phase
of the same run.

Pinned by default (``--cpu 1``): both lookupds and the clients share one vCPU (the node: lookupd
and the Postfix processes that ask it), PostgreSQL, the writer and this process the other(s) —
the database as another machine would be. On this 2-vCPU VM a lookup whose reply wakes a client
on the other, idle vCPU costs lookupd twice the CPU (BENCHMARKS.md, "Read this first"), which
makes unpinned runs (``--cpu -1``) swing between two speeds from one phase to the next.

    .venv/bin/python -m bench.pg_lookup [--domains 10000] [--clients 2] [--seconds 3] [--rounds 3] [--writes 20]
        [--keys 20000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mrod.answers import routing
from mrod.answers import snapshotsql
from mrod.entities import domainimport, relays
from mrod.entities import domains as domaincore
from mrod.infra import db
from mrod.infra.engine import Target
from tests.harness import postgres

from . import dataset, env
from .lookupd_proc import Lookupd, SocketmapClient

SUBDOMAINS_EVERY = 10      # every tenth domain includes its subdomains
MAX_LOOKUPS = 2_000_000    # per client and phase: the time limit ends a phase long before
FOLLOW_LIMIT = 5.0         # seconds the lookupd may take to answer the writer's last add
PHASES = ("sqlite", "sqlite + writes", "postgresql", "postgresql, server frozen",
          "postgresql, server stopped", "postgresql + writes")

# One client: a socketmap connection, sequential lookups from its own offset in the key file,
# every reply compared with the expected one; prints a JSON summary with every latency (µs).
CLIENT = r"""
import json, os, socket, sys, time
host, port, keyfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
offset, start_at, seconds, limit = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
if sys.argv[8] != "-":
    os.sched_setaffinity(0, {int(c) for c in sys.argv[8].split(",")})
pairs = []
with open(keyfile, encoding="utf-8") as fh:
    for line in fh:
        map_name, key, want = line.rstrip("\n").split("\t")
        request, reply = f"{map_name} {key}".encode(), want.encode()
        pairs.append((b"%d:%s," % (len(request), request), b"%d:%s," % (len(reply), reply)))
s = socket.create_connection((host, port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
result = {"n": 0, "wrong": 0, "first_wrong": None, "error": None}
lat = []
while time.monotonic() < start_at:
    time.sleep(min(0.01, max(0.0, start_at - time.monotonic())))
clock = time.perf_counter     # CLOCK_MONOTONIC, as time.monotonic, on Linux
began = clock()
end = began + max(0.0, start_at + seconds - time.monotonic())
i, count, size = offset % len(pairs), 0, len(pairs)
try:
    while count < limit:
        request, want = pairs[i]
        t0 = clock()
        s.sendall(request)
        buf = s.recv(4096)
        if buf != want:
            while True:
                colon = buf.find(b":")
                if colon > 0 and len(buf) >= colon + int(buf[:colon]) + 2:
                    break
                more = s.recv(4096)
                if not more:
                    raise ConnectionError("lookupd closed the connection")
                buf += more
            if buf != want:
                result["wrong"] += 1
                if result["first_wrong"] is None:
                    result["first_wrong"] = [request.decode(), buf.decode(errors="replace"), want.decode()]
        t1 = clock()
        lat.append(round((t1 - t0) * 1e6, 1))
        count += 1
        i = i + 1 if i + 1 < size else 0
        if t1 >= end:
            break
except (OSError, ValueError) as exc:
    result["error"] = f"{type(exc).__name__}: {exc}"
result.update(n=count, began=began, ended=clock(), lat_us=lat)
print(json.dumps(result))
"""


# -- data -------------------------------------------------------------------------------------


def subdomains(i: int) -> bool:
    return i % SUBDOMAINS_EVERY == 0


async def seed(where: Path | Target, count: int) -> None:
    """``count`` domains on one relay (every tenth with subdomains), as ``mrod domain import``
    adds them: two bulk_add transactions."""
    async with db.opened(where, create=isinstance(where, Path)) as conn:
        await relays.add(conn, dataset.ACTOR, name=dataset.RELAY, host="mx1.example.net", port=25)
        for wide in (False, True):
            await domainimport.bulk_add(conn, dataset.ACTOR,
                                        [dataset.domain_name(i) for i in range(count) if subdomains(i) == wide],
                                        relay=dataset.RELAY, source="api", include_subdomains=wide)


def make_keys(count: int, key_count: int, seed_: int = 11) -> list[tuple[str, str, bool]]:
    """(map, key, found?) — half relay_domains, half transport; per map 40% existing domains,
    10% subdomains of domains that include them, 10% subdomains of domains that do not, 40%
    names that do not exist (same shape as the existing ones). Shuffled."""
    rng = random.Random(seed_)
    wide = [i for i in range(count) if subdomains(i)]
    narrow = [i for i in range(count) if not subdomains(i)]
    keys: list[tuple[str, str, bool]] = []
    per_map = key_count // 2
    for map_name in ("relay_domains", "transport"):
        for j in range(per_map):
            kind = j % 10
            if kind < 4:
                name, found = dataset.domain_name(rng.randrange(count)), True
            elif kind == 4:
                name, found = f"mx{j}.{dataset.domain_name(rng.choice(wide))}", True
            elif kind == 5:
                name, found = f"mx{j}.{dataset.domain_name(rng.choice(narrow))}", False
            else:
                name, found = dataset.domain_name(count + rng.randrange(count * 4)), False
            keys.append((map_name, name if map_name == "relay_domains" else f"user{j}@{name}", found))
    rng.shuffle(keys)
    return keys


def write_key_file(path: Path, sqlite_path: Path, keys: list[tuple[str, str, bool]]) -> None:
    """map TAB key TAB expected reply payload: what mrod.answers.routing answers from the SQLite
    data (and the answer must be of the kind the key was made to be)."""
    conn = db.open_readonly(sqlite_path)
    try:
        snap = snapshotsql.load(conn)
    finally:
        conn.close()
    lines = []
    for map_name, key, found in keys:
        answer = routing.answer(snap, map_name, key)
        if answer.status != (routing.OK if found else routing.NOTFOUND):
            raise RuntimeError(f"{map_name} {key}: {answer.wire()!r}, expected {'OK' if found else 'NOTFOUND'}")
        lines.append(f"{map_name}\t{key}\t{answer.wire()}\n")
    path.write_text("".join(lines), encoding="utf-8")


# -- the writer (a process of its own: "another node") ---------------------------------------


async def _writer(spec: dict[str, Any]) -> dict[str, Any]:
    target = Target(path=Path(spec["path"])) if spec.get("path") else Target(
        url=spec["url"], password_file=spec["password_file"])
    rate, seconds, tag = float(spec["rate"]), float(spec["seconds"]), spec["tag"]
    loop = asyncio.get_running_loop()
    async with db.opened(target) as conn:
        print("ready", flush=True)
        start_at = float(await loop.run_in_executor(None, sys.stdin.readline))
        commits: list[float] = []
        for i in range(int(rate * seconds) + 1):
            delay = start_at + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() >= start_at + seconds:
                break
            name = f"w{i // 2}.{tag}.writes.example"
            started = time.perf_counter()
            if i % 2 == 0:
                await domaincore.add(conn, dataset.ACTOR, name, relay=dataset.RELAY)
            else:
                await domaincore.remove(conn, dataset.ACTOR, name)
            commits.append((time.perf_counter() - started) * 1000)
        # One more add, and how soon the lookupd answers it (one connection, polled).
        last = f"last.{tag}.writes.example"
        with SocketmapClient(spec["endpoint"]) as client:
            await domaincore.add(conn, dataset.ACTOR, last, relay=dataset.RELAY)
            committed = time.perf_counter()
            followed = None
            while time.perf_counter() - committed < FOLLOW_LIMIT:
                if client.lookup("relay_domains", last).startswith("OK "):
                    followed = round((time.perf_counter() - committed) * 1000, 2)
                    break
                await asyncio.sleep(0.0005)
    return {"changes": len(commits), "commit_ms_p50": round(_percentile(commits, 50), 2) if commits else None,
            "commit_ms_p99": round(_percentile(commits, 99), 2) if commits else None, "followed_ms": followed}


# -- the PostgreSQL server's processes --------------------------------------------------------


def pg_cpu(server: postgres.Cluster) -> dict[int, float]:
    """CPU seconds used so far by each of the server's processes (empty while it is stopped)."""
    if not (server.data / "postmaster.pid").exists():
        return {}
    cpu = {}
    for pid in server.processes():
        try:
            cpu[pid] = env.cpu_seconds(pid)
        except OSError:
            pass
    return cpu


def probe(server: postgres.Cluster, timeout: float = 0.5) -> bool:
    """Does the server answer at all? An SSLRequest, whose one-byte reply needs no login."""
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
            s.sendall(struct.pack("!ii", 8, 80877103))
            return s.recv(1) in (b"S", b"N")
    except OSError:
        return False


def lookupd_connected(server: postgres.Cluster, timeout: float = 20.0) -> None:
    """Wait (bounded) until the PostgreSQL lookupd's sync connection is back after an outage."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = server.admin("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mrod-lookupd'")
        if rows and rows[0][0]:
            return
        time.sleep(0.1)
    raise RuntimeError("lookupd did not reconnect to PostgreSQL")


# -- lookupd's figures, from /proc ------------------------------------------------------------


def lookupd_figures(node: Lookupd) -> tuple[float, float, int]:
    """(CPU seconds of the whole process, of its main thread — the event loop that answers —,
    the main thread's voluntary context switches: times it slept waiting for a request)."""
    assert node.proc is not None
    pid = node.proc.pid
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rpartition(")")[2].split()
    main = (int(fields[11]) + int(fields[12])) / env.CLOCK_TICKS
    sleeps = 0
    for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            sleeps = int(line.split()[1])
    return env.cpu_seconds(pid), main, sleeps


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (threads started later inherit it)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(task), cpus)
        except ProcessLookupError:
            pass


# -- one phase --------------------------------------------------------------------------------


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError("the writer process did not answer")
    return proc.stdout.readline()


def phase(node: Lookupd, key_file: Path, clients: int, seconds: float, key_count: int,
          server: postgres.Cluster, writer: dict[str, Any] | None, node_cpus: set[int] | None) -> dict[str, Any]:
    """Run the clients (and the writer) against ``node`` once; the figures of this round."""
    writer_proc = None
    procs: list[subprocess.Popen[str]] = []
    if writer is not None:
        writer_proc = subprocess.Popen([env.PYTHON, "-m", "bench.pg_lookup", "--writer", json.dumps(writer)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=env.ROOT)
        if _read_line(writer_proc, 60).strip() != "ready":
            raise RuntimeError("the writer process did not start")
    try:
        start_at = time.monotonic() + 0.8
        if writer_proc is not None:
            assert writer_proc.stdin is not None
            writer_proc.stdin.write(f"{start_at}\n")
            writer_proc.stdin.flush()
        host, _, port = node.endpoint.rpartition(":")
        procs = [subprocess.Popen([env.PYTHON, "-c", CLIENT, host, port, str(key_file),
                                   str(c * key_count // clients), str(start_at), str(seconds), str(MAX_LOOKUPS),
                                   ",".join(map(str, sorted(node_cpus))) if node_cpus else "-"],
                                  stdout=subprocess.PIPE, text=True) for c in range(clients)]
        time.sleep(max(0.0, start_at - time.monotonic()))
        before, pg_before = lookupd_figures(node), pg_cpu(server)
        outputs = [p.communicate(timeout=seconds + 60)[0] for p in procs]
        after, pg_after = lookupd_figures(node), pg_cpu(server)
        wrote = None
        if writer_proc is not None:
            wrote = json.loads(writer_proc.communicate(timeout=60)[0].splitlines()[-1])
    finally:
        for proc in [*procs, *([writer_proc] if writer_proc is not None else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a client failed (exit status {[p.returncode for p in procs]})")
    runs = [json.loads(out) for out in outputs]
    lookups = sum(r["n"] for r in runs)
    window = max(r["ended"] for r in runs) - min(r["began"] for r in runs)
    return {
        "lookups": lookups,
        "lookups_per_s": lookups / window if window > 0 else 0.0,
        "lat_us": [v for r in runs for v in r["lat_us"]],
        "wrong": sum(r["wrong"] for r in runs),
        "first_wrong": next((r["first_wrong"] for r in runs if r["first_wrong"]), None),
        "errors": [r["error"] for r in runs if r["error"]],
        "lookupd_cpu_s": after[0] - before[0],
        "lookupd_main_thread_cpu_s": after[1] - before[1],
        "lookupd_sleeps": after[2] - before[2],
        "postgresql_cpu_s": sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items()),
        "writer": wrote,
    }


# -- the run ----------------------------------------------------------------------------------


def start_node(work: Path, sqlite_path: Path, target: Target | None) -> Lookupd:
    """A lookupd on the SQLite file, or (target) on PostgreSQL; returned once its snapshot is in
    memory (before that, the SQLite one answers from SQL)."""
    work.mkdir()
    work.chmod(0o755)
    node = Lookupd(work, sqlite_path, log_level="INFO")
    if target is not None:
        node.config.write_text("\n".join([
            "[database]", f'path = "{work / "mrod.db"}"', f'url = "{target.url}"',
            f'password_file = "{target.password_file}"',
            "[lookupd]", f'socketmap = "{node.endpoint}"', 'policy = ""']) + "\n")
    node.start(dataset.domain_name(1))
    deadline = time.monotonic() + 60
    while "routing snapshot loaded" not in node.log_text():
        if time.monotonic() > deadline:
            raise RuntimeError(f"lookupd did not load its snapshot: {node.log_text()[-2000:]}")
        time.sleep(0.05)
    return node


def run(domains: int, clients: int, seconds: float, rounds: int, writes: float, key_count: int,
        cpu: int | None) -> dict[str, Any]:
    """cpu: the vCPU of the lookupds and their clients (the node); everything else — PostgreSQL,
    the writer, this process — runs on the other vCPUs. None: nothing pinned."""
    bindir = postgres.pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL server not found (apt-get install postgresql)")
    node_cpus: set[int] | None = None
    if cpu is not None:
        allowed = os.sched_getaffinity(0)
        if cpu not in allowed or len(allowed) < 2:
            raise SystemExit(f"--cpu {cpu}: needs that vCPU and another one (this process may use {sorted(allowed)})")
        node_cpus = {cpu}
        os.sched_setaffinity(0, allowed - node_cpus)    # inherited by PostgreSQL and the writer
    work = env.scratch("pg_lookup")
    server = postgres.Cluster(bindir)
    frozen = False
    nodes: list[Lookupd] = []
    result: dict[str, Any] = {
        "command": f".venv/bin/python -m bench.pg_lookup --domains {domains} --clients {clients}"
                   f" --seconds {seconds:g} --rounds {rounds} --writes {writes:g} --keys {key_count}"
                   f" --cpu {cpu if cpu is not None else -1}",
        "pinned": f"lookupds and clients on vCPU {cpu}, PostgreSQL and the writer on the others"
                  if cpu is not None else "nothing pinned",
        "load_average_before": env.load_average()}
    try:
        server.start()
        target = Target(url=server.url(server.new_database()), password_file=str(server.password_file))
        sqlite_path = work / "mrod.db"
        started = time.monotonic()
        asyncio.run(seed(sqlite_path, domains))
        asyncio.run(seed(target, domains))
        result["seed_seconds"] = round(time.monotonic() - started, 2)
        keys = make_keys(domains, key_count)
        key_file = work / "keys.tsv"
        write_key_file(key_file, sqlite_path, keys)
        sqlite_node = start_node(work / "sqlite", sqlite_path, None)
        nodes.append(sqlite_node)
        pg_node = start_node(work / "pg", sqlite_path, target)
        nodes.append(pg_node)
        if node_cpus:
            for node in nodes:
                assert node.proc is not None
                pin(node.proc.pid, node_cpus)
        # Every key once on each node, sequentially: warm, and every answer checked.
        for node in nodes:
            _check_all(node, key_file)

        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in PHASES}
        probes: list[dict[str, bool]] = []
        for r in range(rounds):
            order = PHASES[r % len(PHASES):] + PHASES[:r % len(PHASES)]
            for name in order:
                node = sqlite_node if name.startswith("sqlite") else pg_node
                writer: dict[str, Any] | None = None
                if name.endswith("+ writes"):
                    writer = {"rate": writes, "seconds": seconds, "endpoint": node.endpoint,
                              "tag": f"r{r}{'s' if node is sqlite_node else 'p'}"}
                    writer.update({"path": str(sqlite_path)} if node is sqlite_node else
                                  {"url": target.url, "password_file": target.password_file})
                if name == "postgresql, server frozen":
                    answered_before = probe(server)
                    server.freeze()
                    frozen = True
                    probes.append({"answered_before": answered_before, "answered_frozen": probe(server)})
                elif name == "postgresql, server stopped":
                    server.pause()
                try:
                    samples[name].append(phase(node, key_file, clients, seconds, key_count, server, writer,
                                               node_cpus))
                finally:
                    if frozen:
                        server.thaw()
                        frozen = False
                    elif name == "postgresql, server stopped":
                        server.resume()
                        lookupd_connected(server)
        result["frozen_probes"] = probes
        result.update(summarise(samples, clients, seconds))
        result["load_average_after"] = env.load_average()
        result["machine"] = env.machine()
        result.update(domains=domains, keys=key_count, clients=clients, seconds=seconds, rounds=rounds,
                      writes_per_s=writes)
        return result
    finally:
        for node in nodes:      # server.stop() thaws a frozen server first
            node.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _check_all(node: Lookupd, key_file: Path) -> None:
    with SocketmapClient(node.endpoint) as client:
        for line in key_file.read_text(encoding="utf-8").splitlines():
            map_name, key, want = line.split("\t")
            got = client.lookup(map_name, key)
            if got != want:
                raise RuntimeError(f"{node.endpoint}: {map_name} {key} answered {got!r}, expected {want!r}")


def summarise(samples: dict[str, list[dict[str, Any]]], clients: int, seconds: float) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for name, runs in samples.items():
        lat = [v for run in runs for v in run["lat_us"]]
        lookups = sum(run["lookups"] for run in runs)
        rows[name] = {
            "lookups_per_s": round(env.median([run["lookups_per_s"] for run in runs])),
            "lookups_per_s_rounds": [round(run["lookups_per_s"]) for run in runs],
            "p50_us": round(_percentile(lat, 50), 1),
            "p99_us": round(_percentile(lat, 99), 1),
            "max_us": round(max(lat), 1),
            "lookupd_cpu_us_per_lookup": round(sum(run["lookupd_cpu_s"] for run in runs) / lookups * 1e6, 2),
            "lookupd_main_thread_cpu_us_per_lookup":
                round(sum(run["lookupd_main_thread_cpu_s"] for run in runs) / lookups * 1e6, 2),
            # the sync thread and the snapshot file writer; /proc counts in 10 ms ticks
            "lookupd_other_threads_cpu_ms_per_phase": round(max(0.0, sum(
                run["lookupd_cpu_s"] - run["lookupd_main_thread_cpu_s"] for run in runs) / len(runs) * 1e3)),
            "lookupd_sleeps_per_lookup": round(sum(run["lookupd_sleeps"] for run in runs) / lookups, 3),
            "postgresql_cpu_ms": round(sum(run["postgresql_cpu_s"] for run in runs) / len(runs) * 1000),
            "lookups": lookups,
            "wrong": sum(run["wrong"] for run in runs),
            "first_wrong": next((run["first_wrong"] for run in runs if run["first_wrong"]), None),
            "errors": [e for run in runs for e in run["errors"]],
        }
        writers = [run["writer"] for run in runs if run["writer"]]
        if writers:
            rows[name]["writer"] = writers
    base = rows["sqlite"]
    for row in rows.values():
        row["vs_sqlite"] = {
            "lookups_per_s": round(row["lookups_per_s"] / base["lookups_per_s"], 2),
            "p50": round(row["p50_us"] / base["p50_us"], 2),
            "p99": round(row["p99_us"] / base["p99_us"], 2),
            "cpu": round(row["lookupd_cpu_us_per_lookup"] / base["lookupd_cpu_us_per_lookup"], 2),
        }
    return {"phases": rows, "table": table(rows)}


def table(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| lookupd on | lookups/s | vs SQLite | p50 µs | vs SQLite | p99 µs | vs SQLite"
             " | lookupd CPU µs/lookup | PostgreSQL CPU ms per phase | wrong answers |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        vs = row["vs_sqlite"]
        pg = "—" if name.startswith("sqlite") else f"{row['postgresql_cpu_ms']:,}"
        lines.append(f"| {name} | {row['lookups_per_s']:,} | {vs['lookups_per_s']:.2f}× | {row['p50_us']:.1f}"
                     f" | {vs['p50']:.2f}× | {row['p99_us']:.1f} | {vs['p99']:.2f}×"
                     f" | {row['lookupd_cpu_us_per_lookup']:.1f} | {pg} | {row['wrong']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=2, help="client processes, one connection each")
    ap.add_argument("--seconds", type=float, default=3.0, help="per phase and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--writes", type=float, default=20.0, help="domain changes per second in the writer phases")
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--cpu", type=int, default=1 if len(os.sched_getaffinity(0)) >= 2 else -1,
                    help="the vCPU of the lookupds and their clients; PostgreSQL and the writer use the others"
                         " (-1: nothing pinned; default 1)")
    ap.add_argument("--writer", help=argparse.SUPPRESS)   # internal: run as the writer process
    args = ap.parse_args()
    if args.writer:
        print(json.dumps(asyncio.run(_writer(json.loads(args.writer)))), flush=True)
        return
    result = run(args.domains, args.clients, args.seconds, args.rounds, args.writes, args.keys,
                 args.cpu if args.cpu >= 0 else None)
    print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=2))
    print()
    print(result["table"])
    bad = [name for name, row in result["phases"].items()
           if row["wrong"] or row["errors"] or any(w["followed_ms"] is None for w in row.get("writer", []))]
    if bad:
        raise SystemExit(f"wrong answers, client errors or a change not followed in: {', '.join(bad)}")


if __name__ == "__main__":
    main()
