"""A systemd socket unit with Accept=yes, for a machine where systemd is not PID 1: a unix
socket with the unit's owner, group and mode; for each connection, the service's ExecStart run
with the connection as stdin and stdout (StandardInput=socket, StandardOutput=socket), stderr
to a log, under the unit's NoNewPrivileges and CapabilityBoundingSet (setpriv). What mrod-postsuper.socket and mrod-postsuper@.service do."""

from __future__ import annotations

import configparser
import grp
import os
import shlex
import socket
import subprocess
import threading
from pathlib import Path

SNIPPETS = Path(__file__).resolve().parents[2] / "postfix-snippets"


def read_unit(path: Path, section: str) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str      # type: ignore[assignment, method-assign]  # keep unit keys case
    parser.read_string(path.read_text())
    return dict(parser[section])


def confined(service: dict[str, str], argv: list[str]) -> list[str]:
    """``argv`` as the service's hardening runs it (what setpriv can reproduce)."""
    command = ["setpriv"]
    if service.get("NoNewPrivileges") == "yes":
        command.append("--no-new-privs")
    if caps := service.get("CapabilityBoundingSet"):
        names = ",".join("+" + c.lower().removeprefix("cap_") for c in caps.split())
        command.append(f"--bounding-set=-all,{names}")
    return [*command, "--", *argv]


class AcceptingSocket:
    def __init__(self, path: Path, log: Path, *, group: str, exec_start: list[str] | None = None,
                 unit: str = "mrod-postsuper", snippets: Path = SNIPPETS) -> None:
        sock_unit = read_unit(snippets / f"{unit}.socket", "Socket")
        assert sock_unit.get("Accept") == "yes"
        self.service = read_unit(snippets / f"{unit}@.service", "Service")
        self.argv = confined(self.service, exec_start or shlex.split(self.service["ExecStart"]))
        self.path, self.log = path, log
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        os.chown(path, 0, grp.getgrnam(group).gr_gid)        # SocketUser=root, SocketGroup=
        os.chmod(path, int(sock_unit["SocketMode"], 8))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.children: list[subprocess.Popen[bytes]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, open(self.log, "ab") as log:
                env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
                self.children.append(subprocess.Popen(self.argv, stdin=conn.fileno(), stdout=conn.fileno(), stderr=log, env=env,
                                                      cwd="/", umask=int(self.service.get("UMask", "0022"), 8)))

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait(10)
        self.path.unlink(missing_ok=True)
