"""Where benchmarks run: scratch directories, free loopback ports, machine facts, process
figures read from /proc, and the small statistics every benchmark reports.

Run ``python -m bench.env`` to print the machine facts recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def scratch(name: str) -> Path:
    """A fresh scratch directory under bench/out/ (traversable by the postgres user)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=OUT))
    path.chmod(0o755)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def load_average() -> float:
    return os.getloadavg()[0]


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def machine() -> dict[str, Any]:
    """Facts that make the figures comparable: CPU, cores, memory, software versions."""
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    os_name = "?"
    if Path("/etc/os-release").exists():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    import aiosqlite  # the version benchmarked against

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "aiosqlite": getattr(aiosqlite, "__version__", "?"),
        "postfix": _version(["postconf", "-d", "-h", "mail_version"]),
        "postgresql": _version([str(PG_BIN / "postgres"), "--version"]),
        "load_average_1min": round(load_average(), 2),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def require_tools() -> None:
    """Fail early, with the package to install, when a tool the benchmarks need is missing."""
    missing = []
    for tool, package in (("postmap", "postfix"), ("postconf", "postfix")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            missing.append(package)
    if not (PG_BIN / "initdb").exists():
        missing.append("postgresql-15")
    if missing:
        raise SystemExit(f"bench: missing tools; apt-get install {' '.join(sorted(set(missing)))}")


if __name__ == "__main__":
    print(json.dumps(machine(), indent=2))
