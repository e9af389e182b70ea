"""How soon lookupd sees a committed change (target: the very next lookup sees it).

The real lookupd (subprocess, socketmap on a free 127.0.0.1 port) serves a database of
``--domains`` domains; the changes come from other processes:

1. next lookup: a writer process (bench.writer: ``mrod.domains.add`` / ``remove``, the code
   the panel and CLI run) commits; as soon as it says the commit returned, ONE lookup on an
   already open socketmap connection (as Postfix keeps one) must give the new answer: OK
   after an add, NOTFOUND after a remove. ``--iterations`` adds and as many removes; every
   stale answer is counted (target: 0).
2. delay: a lookup loop polls a name while the writer adds it; the delay is from the
   writer's commit returning to the first OK (negative: lookupd saw the commit before the
   writer's call had returned — the commit is visible once written, before aiosqlite hands
   control back). Also from the start of the writer's call.
3. the CLI: ``mrod domain add`` / ``mrod domain rm`` as separate processes, a lookup after
   each exits (fewer rounds: each start of the CLI costs a few hundred ms).

    .venv/bin/python -m bench.visibility [--domains 100000] [--iterations 300] [--cli 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from typing import Any

from . import dataset, env, scale
from .lookupd_proc import Lookupd, SocketmapClient


class Writer:
    def __init__(self, db_path: Any) -> None:
        self.proc = subprocess.Popen([env.PYTHON, "-m", "bench.writer", str(db_path)], cwd=env.ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        if self._line() != "ready":
            raise RuntimeError("bench.writer did not start")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"bench.writer exited ({self.proc.poll()})")
        return line

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def done(self) -> tuple[int, int]:
        """(ns before the commit call, ns after it returned)."""
        words = self._line().split()
        if words[0] != "done":
            raise RuntimeError(" ".join(words))
        return int(words[1]), int(words[2])

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _stats_us(values_ns: list[int]) -> dict[str, float]:
    ordered = sorted(values_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # noqa: E731
    return {"min": round(ordered[0] / 1000, 1), "median": round(pick(0.5), 1),
            "p99": round(pick(0.99), 1), "max": round(ordered[-1] / 1000, 1), "n": len(ordered)}


def next_lookup(client: SocketmapClient, writer: Writer, iterations: int) -> dict[str, Any]:
    stale: list[str] = []
    after_commit: list[int] = []
    for i in range(iterations):
        name = f"visible{i}.example"
        if client.lookup("relay_domains", name) != "NOTFOUND ":
            raise RuntimeError(f"{name} exists before it was added")
        for verb, want in (("add", f"OK {name}"), ("rm", "NOTFOUND ")):
            writer.send(f"{verb} {name}")
            _before, after = writer.done()
            reply = client.lookup("relay_domains", name)
            after_commit.append(time.monotonic_ns() - after)
            if reply != want:
                stale.append(f"{verb} {name}: {reply!r}")
    return {"changes": 2 * iterations, "stale_answers": len(stale), "stale_examples": stale[:5],
            "answer_after_commit_returned_us": _stats_us(after_commit)}


def delay(client: SocketmapClient, writer: Writer, iterations: int, timeout: float = 5.0) -> dict[str, Any]:
    from_return: list[int] = []
    from_start: list[int] = []
    polls: list[int] = []
    for i in range(iterations):
        name = f"polled{i}.example"
        writer.send(f"add {name}")
        deadline = time.monotonic() + timeout
        count = 0
        while True:
            reply = client.lookup("relay_domains", name)
            seen = time.monotonic_ns()
            count += 1
            if reply.startswith("OK "):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not visible {timeout}s after it was added")
        before, after = writer.done()
        from_return.append(seen - after)
        from_start.append(seen - before)
        polls.append(count)
        writer.send(f"rm {name}")
        writer.done()
    return {"changes": iterations,
            "first_ok_after_commit_returned_us": _stats_us(from_return),
            "first_ok_after_commit_started_us": _stats_us(from_start),
            "median_lookups_before_ok": sorted(polls)[len(polls) // 2]}


def cli(client: SocketmapClient, config: Any, iterations: int) -> dict[str, Any]:
    stale = 0
    base = [env.PYTHON, "-m", "mrod", "--config", str(config)]
    for i in range(iterations):
        name = f"cli{i}.example"
        for args, want in ((["domain", "add", name, "--relay", dataset.RELAY], f"OK {name}"),
                           (["domain", "rm", name], "NOTFOUND ")):
            subprocess.run(base + args, check=True, capture_output=True, timeout=60, cwd=env.ROOT)
            if client.lookup("relay_domains", name) != want:
                stale += 1
    return {"changes": 2 * iterations, "stale_answers": stale}


def run(domains: int = 100_000, iterations: int = 300, cli_iterations: int = 10) -> dict[str, Any]:
    work = env.scratch("visibility")
    db_path = work / "mrod.db"
    dataset.build_sync(db_path, domains)
    result: dict[str, Any] = {
        "command": f".venv/bin/python -m bench.visibility --domains {domains} --iterations {iterations}"
                   f" --cli {cli_iterations}",
        "domains": domains}
    lookupd = Lookupd(work, db_path, log_level="INFO")
    writer = None
    try:
        lookupd.start(probe_key=dataset.domain_name(0))
        # Measure the in-memory answer path, not the SQL answers given while it loads.
        scale._snapshot_loaded(lookupd)
        writer = Writer(db_path)
        with SocketmapClient(lookupd.endpoint) as client:
            result["next_lookup"] = next_lookup(client, writer, iterations)
            result["delay"] = delay(client, writer, iterations)
            result["cli"] = cli(client, lookupd.config, cli_iterations)
        stale = result["next_lookup"]["stale_answers"] + result["cli"]["stale_answers"]
        result["target"] = {"next_lookup_sees_change": stale == 0, "stale_answers": stale}
    finally:
        if writer is not None:
            writer.close()
        lookupd.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--cli", type=int, default=10)
    args = ap.parse_args()
    print(json.dumps(run(args.domains, args.iterations, args.cli), indent=2))


if __name__ == "__main__":
    main()
