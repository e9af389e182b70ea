"""Would several lookupd processes sharing the port (SO_REUSEPORT) help 16 clients on this
machine? lookupd has no such setting; this measures the option before anyone builds it.

Each worker is the real ``lookupd.daemon.Lookupd`` in its own process (``--serve``), whose
listening socket is opened with SO_REUSEPORT so the kernel spreads the connections over the
workers. ``--clients`` postmaps (``postmap -q -``, each its own slice of the keys) run against
1, 2, ... ``--max-workers`` workers, interleaved over ``--runs`` rounds; the answers are checked
against the expected hits every time. Reports aggregate lookups/s and the workers' CPU.

    .venv/bin/python -m bench.workers [--domains 100000] [--keys 100000] [--max-workers 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from . import dataset, env, postmap
from .lookupd_proc import Lookupd
from .maps import expected_output


class ReusePortLookupd(Lookupd):
    """A lookupd process whose socketmap listener is opened with SO_REUSEPORT."""

    def __init__(self, workdir: Path, db_path: Path, port: int) -> None:
        super().__init__(workdir, db_path)
        self.port = port
        self.config.write_text(_with_port(self.config.read_text(), port))

    @property
    def command(self) -> list[str]:
        return [env.PYTHON, "-m", "bench.workers", "--serve", str(self.config)]


def _with_port(config_text: str, port: int) -> str:
    lines = [f'socketmap = "127.0.0.1:{port}"' if line.startswith("socketmap = ") else line
             for line in config_text.splitlines()]
    return "\n".join(lines) + "\n"


def serve(config_path: str) -> None:
    """One worker: the real Lookupd, with reuse_port on its TCP listeners."""
    from mrod.lookupd.daemon import Lookupd as Daemon, wait_for_signal
    from mrod.infra import config as configmod

    from asyncio import base_events

    original = base_events.BaseEventLoop.create_server

    async def create_server(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["reuse_port"] = True
        return await original(self, *args, **kwargs)

    base_events.BaseEventLoop.create_server = create_server  # type: ignore[method-assign]

    async def main() -> None:
        daemon = Daemon(configmod.load(config_path))
        await daemon.start()
        try:
            await wait_for_signal()
        finally:
            await daemon.stop()

    asyncio.run(main())


def run(domains: int = 100_000, keys: int = 100_000, clients: int = 16, max_workers: int = 3,
        runs: int = 3) -> dict[str, Any]:
    env.require_tools()
    work = env.scratch("workers")
    db_path = work / "mrod.db"
    dataset.build_sync(db_path, domains)
    key_list = dataset.keys(domains, keys)
    slices = postmap.split_keys(key_list, clients, work)
    want = expected_output(key_list, domains)
    confdir = postmap.config_dir(work)
    groups: dict[int, list[ReusePortLookupd]] = {}
    times: dict[int, list[float]] = {n: [] for n in range(1, max_workers + 1)}
    cpu: dict[int, list[float]] = {n: [] for n in range(1, max_workers + 1)}
    try:
        for n in range(1, max_workers + 1):
            port = env.free_port()
            groups[n] = [ReusePortLookupd(work, db_path, port) for _ in range(n)]
            for worker in groups[n]:
                worker.start(probe_key=dataset.domain_name(0))
        for _ in range(runs):
            for n, workers in groups.items():
                m = postmap.socketmap(workers[0].endpoint, f"{n} worker(s)")
                before = sum(w.cpu_seconds() for w in workers)
                seconds, outs = postmap.run_parallel(confdir, m, slices)
                cpu[n].append(sum(w.cpu_seconds() for w in workers) - before)
                if b"".join(outs) != want:
                    raise RuntimeError(f"{n} workers answered differently from the expected hits")
                times[n].append(seconds)
    finally:
        for workers in groups.values():
            for worker in workers:
                worker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "command": f".venv/bin/python -m bench.workers --domains {domains} --keys {keys} --clients {clients}"
                   f" --max-workers {max_workers} --runs {runs}",
        "load_average": env.load_average(),
        "workers": {n: {"seconds": [round(t, 3) for t in times[n]],
                        "lookups_per_s": round(keys / env.median(times[n])),
                        "cpu_us_per_lookup": round(env.median(cpu[n]) / keys * 1e6, 1)} for n in times},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--max-workers", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        sys.exit(0)
    print(json.dumps(run(args.domains, args.keys, args.clients, args.max_workers, args.runs), indent=2))


if __name__ == "__main__":
    main()
