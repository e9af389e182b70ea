"""A private MariaDB for the tests: mariadb-install-db into a temp dir, mariadbd on a free
loopback port and a unix socket there (no system service, no my.cnf: --no-defaults). The
harness administers over the socket as root (unix_socket authentication); a test's source
connects over TCP as an ordinary user with a password."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness import free_port, require_root, require_tool


class MariaDB:
    def __init__(self) -> None:
        self.install = require_tool("mariadb-install-db", "mariadb-server")
        self.server = require_tool("mariadbd", "mariadb-server")
        self.client = require_tool("mariadb", "mariadb-client")
        require_root("a private MariaDB")
        self.dir = Path(tempfile.mkdtemp(prefix="mrod-mariadb-"))
        self.sock = self.dir / "mysqld.sock"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "MariaDB":
        data = self.dir / "data"
        subprocess.run([self.install, "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        with open(self.dir / "mariadbd.log", "wb") as log:
            self.proc = subprocess.Popen(
                [self.server, "--no-defaults", f"--datadir={data}", "--user=root", "--bind-address=127.0.0.1",
                 f"--port={self.port}", f"--socket={self.sock}", f"--pid-file={self.dir / 'mariadbd.pid'}",
                 "--skip-log-bin", "--innodb-buffer-pool-size=16M", "--skip-name-resolve"],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while not (self.sock.exists() and _listening(self.port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not start: {(self.dir / 'mariadbd.log').read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def admin(self, sql: str) -> None:
        subprocess.run([self.client, "--no-defaults", f"--socket={self.sock}", "-u", "root"], input=sql.encode(),
                       check=True, capture_output=True, timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
