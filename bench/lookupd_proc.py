"""The real lookupd as a subprocess (``python -m mrod --config F lookupd``) on a free loopback
port, and a minimal blocking socketmap client to talk to it.

Start time is measured from spawning the process until the socketmap answers its first
lookup correctly; memory and CPU are read from /proc (summed over worker processes, if any).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Self

from . import env


class SocketmapClient:
    """One connection, one request at a time — how Postfix's dict_sockmap talks."""

    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        """endpoint: ``127.0.0.1:PORT`` or ``unix:/path``."""
        if endpoint.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(endpoint[5:])
            except OSError:
                self.sock.close()
                raise
        else:
            host, _, port = endpoint.rpartition(":")
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def lookup(self, map_name: str, key: str) -> str:
        payload = f"{map_name} {key}".encode()
        self.sock.sendall(b"%d:%s," % (len(payload), payload))
        while True:
            colon = self._buf.find(b":")
            if colon > 0:
                length = int(self._buf[:colon])
                end = colon + 1 + length
                if len(self._buf) > end:
                    reply, self._buf = self._buf[colon + 1:end], self._buf[end + 1:]
                    return reply.decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("lookupd closed the connection")
            self._buf += chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SocketmapClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ServerProcess:
    """A socketmap server subprocess; subclasses give its command and endpoint."""

    def __init__(self, workdir: Path, unix: bool = False, tree: Path | None = None) -> None:
        """tree: run the code of another source tree (a copy of mrod/ and lookupd/, e.g. before
        a change) instead of this one."""
        self.workdir = workdir
        self.tree = tree or env.ROOT
        self.environ = dict(os.environ, PYTHONPATH=str(tree)) if tree else None
        self.port = env.free_port()
        self.socket_path = workdir / f"{type(self).__name__.lower()}-{self.port}.sock" if unix else None
        self.proc: subprocess.Popen | None = None
        self.start_seconds: float | None = None

    @property
    def endpoint(self) -> str:
        return f"unix:{self.socket_path}" if self.socket_path else f"127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        raise NotImplementedError

    def check_reply(self, key: str, reply: str) -> None:
        pass

    def start(self, probe_key: str, timeout: float = 60.0) -> float:
        """Spawn; return seconds until ``relay_domains probe_key`` is answered (correctly)."""
        name = type(self).__name__
        log = open(self.workdir / f"{name.lower()}.log", "ab")
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.command, stdout=log, stderr=log, cwd=self.tree, env=self.environ)
        log.close()
        deadline = started + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}; see {log.name}")
            try:
                with SocketmapClient(self.endpoint, timeout=timeout) as client:
                    reply = client.lookup("relay_domains", probe_key)
            except OSError:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{name} did not answer within {timeout}s") from None
                time.sleep(0.002)
                continue
            self.start_seconds = time.perf_counter() - started
            self.check_reply(probe_key, reply)
            return self.start_seconds

    def pids(self) -> list[int]:
        """The daemon and its worker processes (if it forks any)."""
        assert self.proc is not None
        found = [self.proc.pid]
        for pid in found:
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                    found.extend(int(c) for c in children if int(c) not in found)
            except FileNotFoundError:
                pass
        return found

    def rss_kib(self) -> int:
        return sum(env.rss_kib(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        return sum(env.cpu_seconds(pid) for pid in self.pids())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Lookupd(ServerProcess):
    """The real lookupd serving ``db_path`` on a socketmap at 127.0.0.1:PORT (or a unix socket)."""

    def __init__(self, workdir: Path, db_path: Path, *, unix: bool = False,
                 extra: dict[str, Any] | None = None, tree: Path | None = None,
                 log_level: str = "WARNING") -> None:
        super().__init__(workdir, unix, tree)
        self.log_level = log_level
        self.config = workdir / f"mrod-{self.port}.toml"
        lines = ["[database]", f'path = "{Path(db_path).resolve()}"', "[lookupd]",
                 f'socketmap = "{self.endpoint}"', *([] if "policy" in (extra or {}) else ['policy = ""'])]
        for key, value in (extra or {}).items():
            lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value!r}")
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def command(self) -> list[str]:
        return [env.PYTHON, "-m", "mrod", "--config", str(self.config), "--log-level", self.log_level, "lookupd"]

    def log_text(self) -> str:
        return (self.workdir / f"{type(self).__name__.lower()}.log").read_text(errors="replace")

    def check_reply(self, key: str, reply: str) -> None:
        if not reply.startswith("OK "):
            raise RuntimeError(f"lookupd answered {reply!r} for {key}, expected OK")


class Floor(ServerProcess):
    """bench.floor: answers NOTFOUND to everything, doing no work (the protocol floor)."""

    uvloop = False

    @property
    def command(self) -> list[str]:
        return [env.PYTHON, "-m", "bench.floor", "--listen", self.endpoint, *(["--uvloop"] if self.uvloop else [])]


class UvloopFloor(Floor):
    """The floor on uvloop: the ceiling for lookupd, which runs on uvloop when installed."""

    uvloop = True


C_FLOOR_SOURCE = Path("/work/shared/bench/floor.c")


class CFloor(ServerProcess):
    """The C floor (a reference, not part of mrod): ``floor.c``, a thread per connection that
    answers ``OK x`` or ``NOTFOUND `` without looking anything up — what no socketmap server
    on this machine can beat. Built with gcc into build/ at bench time."""

    binary = env.ROOT / "build" / "floor"

    @classmethod
    def build(cls, source: Path = C_FLOOR_SOURCE) -> bool:
        """Compile the floor; False when its source is absent (the caller skips its row)."""
        if not source.exists():
            return False
        cls.binary.parent.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(cls.binary), str(source)], check=True)
        return True

    @property
    def command(self) -> list[str]:
        return [str(self.binary), str(self.port)]
