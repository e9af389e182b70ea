"""Markdown tables from the results of bench.all (``bench/out/report.md``), the figures that
BENCHMARKS.md quotes — each table under the command that produced it.

    .venv/bin/python -m bench.report [bench/out/results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import env


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def machine(m: dict[str, Any]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in m.items()), ""]


def maps(r: dict[str, Any]) -> list[str]:
    lines = [f"`{r['command']}`", "",
             f"{r['domains']} domains, {r['keys']} keys ({r['hits']} hits), {r['clients']} clients, "
             f"median of {r['runs']} runs; load average {r['load_average_before']:.2f} before, "
             f"{r['load_average_after']:.2f} after. bulk_add of the domains: {r['bulk_add_seconds']} s.", "",
             "| map | sequential µs/lookup | sequential, pinned to one vCPU, µs/lookup "
             "| 16 clients lookups/s | server CPU µs/lookup (seq / pinned / 16) |",
             "|---|---:|---:|---:|---:|"]
    for label, v in r["maps"].items():
        cpu = v.get("server_cpu_us_per_lookup")
        cpu_text = f"{cpu['sequential']} / {cpu['pinned']} / {cpu['concurrent']}" if cpu else "–"
        lines.append(f"| {label} | {v['sequential_us_per_lookup']} | {v['pinned_us_per_lookup']} "
                     f"| {v['concurrent_lookups_per_s']:,} | {cpu_text} |")
    lines += ["", f"lookupd RSS {r['lookupd_rss_kib'] / 1024:.1f} MiB after the runs; the wall time of "
                  "every run is in results.json.", "",
              "| target (issue 23) | value | target | met |", "|---|---:|---:|---|"]
    for name, t in r["targets"].items():
        lines.append(f"| {name.replace('_', ' ')} | {t['value']} | {t['target']} | {_yes(t['met'])} |")
    return lines + [""]


def visibility(r: dict[str, Any]) -> list[str]:
    nl, d, c = r["next_lookup"], r["delay"], r["cli"]
    a, f, s = nl["answer_after_commit_returned_us"], d["first_ok_after_commit_returned_us"], \
        d["first_ok_after_commit_started_us"]
    return [f"`{r['command']}`", "",
            "| measure | n | min µs | median µs | p99 µs | max µs |", "|---|---:|---:|---:|---:|---:|",
            f"| next lookup after the writer's commit returned (answer received) | {a['n']} | {a['min']} "
            f"| {a['median']} | {a['p99']} | {a['max']} |",
            f"| polling: first OK after the commit call returned | {f['n']} | {f['min']} | {f['median']} "
            f"| {f['p99']} | {f['max']} |",
            f"| polling: first OK after the commit call started | {s['n']} | {s['min']} | {s['median']} "
            f"| {s['p99']} | {s['max']} |", "",
            f"Stale answers: {nl['stale_answers']} of {nl['changes']} changes through bench.writer, "
            f"{c['stale_answers']} of {c['changes']} through the `mrod domain add/rm` CLI. "
            f"Target (the next lookup sees the change): {_yes(r['target']['next_lookup_sees_change'])}.", ""]


def scale(r: dict[str, Any]) -> list[str]:
    t = r["targets"]
    return [f"`{r['command']}`", "",
            f"{r['domains']:,} domains (bulk_add {r['bulk_add_seconds']} s, database {r['database_mib']} MiB); "
            f"load average {r['load_average_before']:.2f}.", "",
            "| measure | value | target | met |", "|---|---:|---:|---|",
            f"| start (spawn to first OK answer), median of {len(r['start_seconds'])} | "
            f"{r['start_seconds_median']} s | ≤ 5 s | {_yes(t['start']['met'])} |",
            f"| RSS after start | {r['rss_after_start_kib'] / 1024:.1f} MiB | | |",
            f"| RSS after 100k sequential lookups | {r['rss_after_sequential_kib'] / 1024:.1f} MiB | | |",
            f"| RSS after 16 clients | {r['rss_after_16_clients_kib'] / 1024:.1f} MiB "
            f"| ≤ 300 MB | {_yes(t['rss']['met'])} |", "",
            f"For scale: `python -c pass` {r['python_startup_seconds']} s, importing mrod.cli + lookupd.daemon "
            f"{r['import_lookupd_seconds']} s; all starts: {r['start_seconds']}.", ""]


def hotpath(r: dict[str, Any]) -> list[str]:
    lines = [f"`{r['command']}`", "", "| way | µs per query |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in r["us_per_query"].items()]
    return lines + ["", f"aiosqlite costs {r['aiosqlite_vs_loop']}x the direct call, asyncio.to_thread "
                        f"{r['to_thread_vs_loop']}x.", ""]


def workers(r: dict[str, Any]) -> list[str]:
    lines = [f"`{r['command']}`", "", f"Load average {r['load_average']:.2f}.", "",
             "| lookupd processes (SO_REUSEPORT) | 16 clients lookups/s | vs 1 | CPU µs/lookup (all workers) |",
             "|---:|---:|---:|---:|"]
    one = r["workers"]["1"]["lookups_per_s"] if "1" in r["workers"] else r["workers"][1]["lookups_per_s"]
    for n, v in r["workers"].items():
        lines.append(f"| {n} | {v['lookups_per_s']:,} | {v['lookups_per_s'] / one:.2f}x | {v['cpu_us_per_lookup']} |")
    return lines + [""]


def profile(r: dict[str, Any]) -> list[str]:
    if "skipped" in r:
        return [f"Skipped: {r['skipped']}.", ""]
    lines = [f"`{r['command']}`", "", f"Load average {r['load_average']:.2f}.", ""]
    for mode in ("sequential", "concurrent"):
        v = r[mode]
        lines += [f"{mode}: lookupd CPU {v['cpu_us_per_lookup']} µs per lookup.", "",
                  "| where | % of lookupd's CPU |", "|---|---:|"]
        lines += [f"| {k} | {p} |" for k, p in v["by_object_percent"].items()]
        lines += [f"| top symbol: {k} | {p} |" for k, p in list(v["top_symbols_percent"].items())[:4]]
        lines.append("")
    return lines


def breakdown(r: dict[str, Any]) -> list[str]:
    lines = [f"`{r['command']}`", "", "| layer | µs per call |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in r["us_per_call"].items()]
    return lines + [""]


SECTIONS = (("maps", "postmap against socketmap, sqlite: and pgsql:", maps),
            ("visibility", "Change visibility", visibility),
            ("workers", "Worker processes sharing the port (measured, not built)", workers),
            ("profile", "lookupd's CPU by perf", profile),
            ("breakdown", "Where a lookup's time goes inside lookupd", breakdown),
            ("scale", "lookupd with 1M domains", scale),
            ("hotpath", "Lookup query: sqlite3 on the loop vs aiosqlite", hotpath))


def render(results: dict[str, Any]) -> str:
    lines = [f"# mrod benchmark run, {results['machine']['date']}", "", "## Machine", ""]
    lines += machine(results["machine"])
    for key, title, fn in SECTIONS:
        if key in results:
            lines += [f"## {title}", "", *fn(results[key])]
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else env.OUT / "results.json"
    print(render(json.loads(path.read_text())))
