"""``mrod serve``: one command, one unit, two worker processes under a small supervisor.

* the **lookupd** child: the socketmap / tcp_table / policy listeners (and ``[metrics] listen``)
  on uvloop — nothing else runs on its event loop, so a slow panel page, a BIND import or a
  job never delays a lookup;
* the **panel** child: the admin panel and API, the background jobs, the BIND importer — at
  nice 10, so on a small machine it yields the CPU to lookupd.

The supervisor binds the lookupd sockets once (or takes them from systemd: ``mrod.socket``)
and hands them to every lookupd child it starts, so restarts never refuse Postfix:

* ``SIGHUP`` (``systemctl reload mrod``, or after an upgrade): a new lookupd child starts on the
  same sockets; once it is ready the old one stops accepting, finishes the requests in hand and
  exits (Postfix's clients reconnect, to the new one). Then the panel child is restarted.
* ``SIGTERM``/``SIGINT``: both children stop; exit 0.
* A child that dies is started again (a few times a minute at most; then mrod serve exits 1).

The supervisor itself does nothing per request and imports little; it waits in sigtimedwait.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from mrod.cli import listenerrors
from mrod.infra import endpoints
from mrod.infra.errors import MrodError
from mrod.infra.config import Config

log = logging.getLogger("mrod")

READY_VARIABLE = "MROD_READY_FD"
METRICS_VARIABLE = "MROD_LOOKUPD_METRICS"   # the private socket of lookupd's counters
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 12.0          # systemd's TimeoutStopSec is 15 s
MAX_RESTARTS = 5             # per RESTART_WINDOW seconds, per child
RESTART_WINDOW = 60.0
PANEL_NICE = 10              # the panel and jobs run at a lower CPU priority than lookupd
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}


def listener_endpoints(cfg: Config) -> dict[str, endpoints.Endpoint]:
    """fd name -> endpoint of every lookupd listener, as lookupd/daemon.py names them."""
    lk = cfg.lookupd
    found = {}
    if lk.socketmap:
        found["socketmap"] = endpoints.parse(lk.socketmap)
    if lk.policy:
        found["policy"] = endpoints.parse(lk.policy)
    for map_name, endpoint in sorted(lk.tcp_table.items()):
        found[f"tcp_table.{map_name}"] = endpoints.parse(endpoint)
    return found


def acquire_sockets(cfg: Config) -> dict[str, socket.socket]:
    """The lookupd sockets: systemd's where it passed them (by name or address), else bound here."""
    from mrod.lookupd import sockets as handover

    available = handover.inherited()
    held: dict[str, socket.socket] = {}
    for name, ep in listener_endpoints(cfg).items():
        sock = handover.pick(name, ep, available)
        if sock is None:
            try:
                sock = handover.bind(ep)
            except OSError as exc:
                for other in held.values():
                    other.close()
                raise MrodError(listenerrors.sentence(f"lookupd.{name}", str(ep), exc)) from None
        held[name] = sock
    for name, sock in available:
        log.warning("systemd passed a socket mrod does not use (%s): closed", name or sock.getsockname())
        sock.close()
    return held


class Child:
    def __init__(self, role: str, argv: list[str], sockets: dict[str, socket.socket], nice: int = 0) -> None:
        self.role = role
        self.nice = nice
        self.argv = argv
        self.sockets = sockets
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []

    def start(self) -> bool:
        """Start and wait until the child says it is serving; False if it did not."""
        from mrod.lookupd import sockets as handover

        read_end, write_end = os.pipe()
        env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")}
        env[READY_VARIABLE] = str(write_end)
        if self.sockets:
            env[handover.OWN_VARIABLE] = handover.describe(self.sockets)
        fds = (write_end, *(s.fileno() for s in self.sockets.values()))
        self.starts = [t for t in self.starts if time.monotonic() - t < RESTART_WINDOW] + [time.monotonic()]
        try:
            self.proc = subprocess.Popen([*self.argv, "--role", self.role], env=env, pass_fds=fds,
                                         preexec_fn=lambda: _child_setup(self.nice))
        finally:
            os.close(write_end)
        try:
            return _wait_ready(read_end, self.proc, READY_TIMEOUT)
        finally:
            os.close(read_end)

    def stop(self, proc: subprocess.Popen[bytes] | None = None) -> int | None:
        proc = proc or self.proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error("the %s process did not stop within %gs: killed", self.role, STOP_TIMEOUT)
            proc.kill()
            return proc.wait()

    def too_many_restarts(self) -> bool:
        return len([t for t in self.starts if time.monotonic() - t < RESTART_WINDOW]) >= MAX_RESTARTS


def _child_setup(nice: int) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if nice:
        os.nice(nice)


def _wait_ready(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            return os.read(fd, 1) == b"1"    # b"": the child exited (or closed it) without being ready
        if proc.poll() is not None:
            return False
    return False


def notify_ready() -> None:
    """Called by a child once it serves: tell the supervisor (and systemd, for Type=notify)."""
    fd = os.environ.pop(READY_VARIABLE, "")
    if fd.isdigit():
        try:
            os.write(int(fd), b"1")
            os.close(int(fd))
        except OSError:
            pass


def serve(cfg: Config, argv: list[str]) -> int:
    """Run until SIGTERM/SIGINT. ``argv``: the command line that runs a child (``--role`` added)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    held = acquire_sockets(cfg)
    private = tempfile.mkdtemp(prefix="mrod-serve-")
    os.environ[METRICS_VARIABLE] = os.path.join(private, "lookupd-metrics.sock")
    # The panel process yields the CPU to lookupd: on a small machine a page being rendered
    # otherwise delays lookups by competing for the cores (bench.isolation).
    children = [Child("lookupd", argv, held), Child("panel", argv, {}, nice=PANEL_NICE)]
    try:
        for child in children:
            if not child.start():
                log.error("the %s process did not start", child.role)
                return 1
        pids = [child.proc.pid if child.proc else 0 for child in children]
        log.info("mrod serve: lookupd (pid %d) and panel (pid %d) running", *pids)
        status = _supervise(children)
    finally:
        for child in reversed(children):
            child.stop()
        for sock in held.values():
            sock.close()
        shutil.rmtree(private, ignore_errors=True)
    log.info("mrod serve stopped")
    return status


def _supervise(children: list[Child]) -> int:
    while True:
        info: Any = signal.sigtimedwait(_SIGNALS, 1.0)
        signo = info.si_signo if info is not None else None
        if signo in (signal.SIGTERM, signal.SIGINT):
            log.info("mrod serve stopping (%s): the lookupd and panel processes", signal.Signals(signo).name)
            return 0
        if signo == signal.SIGHUP:
            log.info("restarting the lookupd and panel processes (SIGHUP)")
            for child in children:
                if not _replace(child):
                    return 1
            continue
        for child in children:
            if child.proc is not None and child.proc.poll() is not None:
                log.error("the %s process exited (%s); starting it again", child.role, child.proc.returncode)
                if child.too_many_restarts() or not child.start():
                    log.error("the %s process keeps failing: mrod serve stops", child.role)
                    return 1


def _replace(child: Child) -> bool:
    """A new process first where it shares sockets (lookupd: no gap); else stop, then start."""
    old = child.proc
    if child.sockets:
        if not child.start():
            log.error("the new %s process did not start; the old one keeps serving", child.role)
            child.proc = old
            return True
        child.stop(old)
        return True
    child.stop(old)
    return child.start()


def child_argv() -> list[str]:
    """How to run this mrod again, with the same global options (a child of the supervisor)."""
    args = sys.argv[1:]
    cut = args.index("serve") if "serve" in args else len(args)
    return [sys.executable, "-m", "mrod", *args[:cut], "serve"]
