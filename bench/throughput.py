"""Postfix's own throughput as a backup MX (issue 10): messages accepted per second by a private
Postfix whose maps are mrod's socketmap (the real ``mrod lookupd``) or ``hash:`` files with the
same answers (MRoD's way), and lookupd's CPU per message.

``--domains`` relay domains on one relay whose primary is down (a closed loopback port);
``--messages`` messages, sent by Postfix's ``smtp-source`` in sessions of 2 messages, one
domain per session (so every session asks the maps afresh), ``--sessions`` at a time. The
first delivery attempt of each message meets the closed port and defers it; retries are put
off (backoff 300 s) so they do not mix in. Variants are interleaved, medians of ``--runs``.
(pgsql: maps are not in this benchmark yet.)

``--policy`` adds a Postfix with the recommended configuration — mrod's maps and its policy
service (``check_policy_service``, one request per recipient) on a second lookupd with the
policy listener on — so the policy service's cost per message is the difference to "mrod
socketmap" (issue 23.3).

    .venv/bin/python -m bench.throughput [--domains 1000] [--messages 2000] [--sessions 10] [--runs 3]
        [--baseline TREE] [--policy]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mrod.answers import postfixlines
from mrod.entities import domainimport, relays
from mrod.infra import config as configmod
from mrod.infra import db
from tests.harness.postfix import PostfixInstance
from tests.harness.postfixcf import parse_main_cf

from . import env
from .dataset import ACTOR
from .lookupd_proc import Lookupd

SMTP_SOURCE = "/usr/sbin/smtp-source"
QUIET_QUEUE = {"minimal_backoff_time": "300s", "maximal_backoff_time": "600s", "queue_run_delay": "300s"}


def domain(i: int) -> str:
    return f"d{i}.tput.example"


async def build(path: Path, count: int, dead_port: int) -> None:
    async with db.opened(path, create=True) as conn:
        await relays.add(conn, ACTOR, name="down", host="127.0.0.1", port=dead_port)
        await domainimport.bulk_add(conn, ACTOR, [domain(i) for i in range(count)], relay="down", source="api")


def hash_settings(instance_dir: Path, mrod_settings: dict[str, str], count: int, dead_port: int,
                  run: Any) -> dict[str, str]:
    """mrod's main.cf lines with every socketmap replaced by a hash: file of the same answers."""
    maps = instance_dir / "maps"
    maps.mkdir()
    content = {
        "relay_domains": "".join(f"{domain(i)} {domain(i)}\n" for i in range(count)),
        "transport": "".join(f"{domain(i)} relay:[127.0.0.1]:{dead_port}\n" for i in range(count)),
        "relay_recipients": "".join(f"@{domain(i)} accept_all\n" for i in range(count)),
        "tls_policy": "",
    }
    settings = dict(mrod_settings)
    for name, text in content.items():
        (maps / name).write_text(text)
        run(["postmap", f"hash:{maps / name}"])
        for key, value in settings.items():
            if value.startswith("socketmap:") and value.endswith(f":{name}"):
                settings[key] = f"hash:{maps / name}"
    return settings


def send(port: int, count: int, sessions: int, per_session: int = 2) -> float:
    """Seconds for ``count`` messages in sessions of ``per_session``, ``sessions`` at a time."""
    def one(i: int) -> None:
        subprocess.run([SMTP_SOURCE, "-s", "1", "-m", str(per_session), "-f", "sender@client.test",
                        "-t", f"user{i}@{domain(i)}", f"127.0.0.1:{port}"], check=True, capture_output=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(one, range(count // per_session)))
    return time.perf_counter() - started


def queued(instance: PostfixInstance) -> int:
    return len(instance.queue())


POLICY = "mrod socketmap + policy service (recommended config)"


def run(domain_count: int, messages: int, sessions: int, runs: int, baseline: Path | None = None,
        policy: bool = False) -> dict[str, Any]:
    """baseline: another source tree whose lookupd serves a third Postfix (before/after);
    policy: also the recommended config, maps and policy service on one lookupd."""
    env.require_tools()
    work = env.scratch("throughput")
    dead_port = env.free_port()       # nobody listens: the primary is down
    db_path = work / "mrod.db"
    asyncio.run(build(db_path, domain_count, dead_port))
    lookupd = Lookupd(work, db_path)
    before = Lookupd(work, db_path, tree=baseline) if baseline else None
    with_policy = Lookupd(work, db_path, extra={"policy": f"127.0.0.1:{env.free_port()}"}) if policy else None
    instances: dict[str, PostfixInstance] = {}
    result: dict[str, Any] = {
        "command": f".venv/bin/python -m bench.throughput --domains {domain_count} --messages {messages}"
                   f" --sessions {sessions} --runs {runs}" + (f" --baseline {baseline}" if baseline else "")
                   + (" --policy" if policy else ""),
        "load_average_before": env.load_average()}
    try:
        lookupd.start(probe_key=domain(0))
        cfg = configmod.load(lookupd.config, env={})
        instances["mrod socketmap"] = PostfixInstance(cfg, settings=QUIET_QUEUE)
        if before is not None:
            before.start(probe_key=domain(0))
            instances[f"mrod socketmap, lookupd from {baseline}"] = PostfixInstance(
                configmod.load(before.config, env={}), settings=QUIET_QUEUE)
        if with_policy is not None:
            with_policy.start(probe_key=domain(0))
            instances[POLICY] = PostfixInstance(configmod.load(with_policy.config, env={}), settings=QUIET_QUEUE)
        plain = PostfixInstance(None, settings=QUIET_QUEUE)
        mrod_lines = parse_main_cf(postfixlines.main_cf(cfg))
        settings = hash_settings(plain.directory, mrod_lines, domain_count, dead_port,
                                 lambda args: plain.run(*args))
        plain.settings.update(settings)
        (plain.etc / "main.cf").unlink()
        (plain.etc / "master.cf").unlink()
        plain.etc.rmdir()
        shutil.rmtree(plain.directory / "spool")
        shutil.rmtree(plain.directory / "data")
        plain._write()
        instances["hash:"] = plain
        for instance in instances.values():
            instance.start()
        seconds: dict[str, list[float]] = {name: [] for name in instances}
        servers = {"mrod socketmap": lookupd}
        if before is not None:
            servers[f"mrod socketmap, lookupd from {baseline}"] = before
        if with_policy is not None:
            servers[POLICY] = with_policy
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(runs):
            for name, instance in instances.items():      # interleaved
                instance.delete_queue()
                server = servers.get(name)
                cpu_before = server.cpu_seconds() if server else 0.0
                seconds[name].append(send(instance.port, messages, sessions))
                if server:
                    cpu[name].append(server.cpu_seconds() - cpu_before)
                if queued(instance) < messages:
                    raise RuntimeError(f"{name}: only {queued(instance)} of {messages} messages queued")
        result["messages_per_s"] = {name: round(messages / env.median(v)) for name, v in seconds.items()}
        result["seconds"] = {name: [round(x, 2) for x in v] for name, v in seconds.items()}
        result["ratio_mrod_vs_hash"] = round(result["messages_per_s"]["mrod socketmap"]
                                             / result["messages_per_s"]["hash:"], 2)
        result["lookupd_cpu_us_per_message"] = {name: round(env.median(v) / messages * 1e6) for name, v in cpu.items()}
        if with_policy is not None:
            # Wall time per message each way: what the policy service adds to a message.
            per = {name: env.median(v) / messages * 1e6 for name, v in seconds.items()}
            result["policy_cost_us_per_message"] = {
                "vs mrod socketmap": round(per[POLICY] - per["mrod socketmap"]),
                "vs hash:": round(per[POLICY] - per["hash:"])}
            rates = result["messages_per_s"]
            result["ratio_policy_vs_hash"] = round(rates[POLICY] / rates["hash:"], 2)
        result["load_average_after"] = env.load_average()
    finally:
        for instance in instances.values():
            instance.stop()
            instance.remove()
        lookupd.stop()
        for other in (before, with_policy):
            if other is not None:
                other.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", type=Path, metavar="TREE", help="also measure the lookupd of this source tree")
    ap.add_argument("--policy", action="store_true", help="also the recommended config with the policy service")
    args = ap.parse_args()
    baseline = args.baseline.resolve() if args.baseline else None
    print(json.dumps(run(args.domains, args.messages, args.sessions, args.runs, baseline, args.policy), indent=2))


if __name__ == "__main__":
    main()
