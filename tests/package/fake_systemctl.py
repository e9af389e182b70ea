"""`systemctl start|stop|restart mrod` for a machine where systemd is not PID 1 (this test
machine): runs the installed unit's ExecStart as the unit says (tests.package.debian.Unit),
so the README's production steps run verbatim. Only what the README uses is supported."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mrod.infra import config as configmod
from tests.harness import accepts
from tests.package.debian import Unit

STATE = Path(os.environ.get("FAKE_SYSTEMD_STATE", "/run/mrod-fake-systemd"))


def start() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    proc = Unit.read().popen(STATE / "mrod.log")
    (STATE / "mrod.pid").write_text(str(proc.pid))
    cfg = configmod.load("/etc/mrod/mrod.toml", env={})
    port = int(cfg.lookupd.socketmap.rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while not accepts(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"mrod.service failed to start:\n{(STATE / 'mrod.log').read_text()}")
        time.sleep(0.1)


def stop() -> None:
    pid_file = STATE / "mrod.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        # Started by another `systemctl start` process: not our child to wait for; watch /proc.
        while not _zombie(pid):
            if time.monotonic() > deadline:
                sys.exit(f"mrod.service did not stop within 20 s (pid {pid})")
            time.sleep(0.1)
    except ProcessLookupError:
        pass
    pid_file.unlink()


def _zombie(pid: int) -> bool:
    """Gone, or exited and waiting for a reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] in "ZX"
    except (FileNotFoundError, IndexError):
        return True


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("mrod", "mrod.service"):
        sys.exit(f"fake systemctl: unsupported: {' '.join(argv)}")
    action = argv[0]
    if action in ("stop", "restart"):
        stop()
    if action in ("start", "restart"):
        start()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
