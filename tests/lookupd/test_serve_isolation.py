"""`mrod serve` runs lookupd in a process of its own (issue 10): with the panel's process
frozen outright (SIGSTOP — more than a blocked event loop), Postfix's lookups are answered,
and a change committed meanwhile is answered by the next lookup."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.harness import free_port


def lookup(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"%d:%s," % (len(request), request))
        return s.recv(200)


def children(pid: int) -> dict[str, int]:
    """role -> pid of mrod serve's children."""
    found = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"--role" in argv:      # (not yet: forked, not yet exec'd)
            found[argv[argv.index(b"--role") + 1].decode()] = int(child)
    return found


def test_lookups_are_answered_while_the_panel_is_frozen(tmp_path: Path) -> None:
    panel, socketmap = free_port(), free_port()
    config = tmp_path / "mrod.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "mrod.db"}"\n'
                      f'[lookupd]\nsocketmap = "127.0.0.1:{socketmap}"\npolicy = ""\n'
                      f'[admin]\nlisten = "127.0.0.1:{panel}"\nbcrypt_rounds = 4\n'
                      '[health]\nenabled = false\n[queue]\nenabled = false\n[checks]\nenabled = false\n')
    mrod = [sys.executable, "-m", "mrod", "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    log_path = tmp_path / "serve.log"
    subprocess.run([*mrod, "init"], capture_output=True, timeout=60, env=env, check=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*mrod, "serve"], stdout=log, stderr=subprocess.STDOUT, env=env)
    frozen = None
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                if len(children(proc.pid)) == 2 and lookup(socketmap, b"relay_domains x.example", 1):
                    socket.create_connection(("127.0.0.1", panel), timeout=1).close()
                    break
            except OSError:
                pass
            time.sleep(0.1)
        roles = children(proc.pid)
        # The panel (and jobs) yield the CPU to lookupd.
        assert (os.getpriority(os.PRIO_PROCESS, roles["panel"])
                - os.getpriority(os.PRIO_PROCESS, roles["lookupd"])) == 10
        frozen = roles["panel"]
        os.kill(frozen, signal.SIGSTOP)
        with socket.create_connection(("127.0.0.1", panel), timeout=2) as s:   # the backlog accepts...
            s.sendall(b"GET /login HTTP/1.0\r\n\r\n")
            s.settimeout(1.0)
            try:
                assert s.recv(100) == b"", "the frozen panel answered"
            except socket.timeout:
                pass                                                          # ...nobody answers
        subprocess.run([*mrod, "relay", "add", "p1", "--host", "mx1.example.net"], check=True, env=env,
                       capture_output=True)
        for i in range(5):
            name = f"d{i}.example".encode()
            assert lookup(socketmap, b"relay_domains " + name) == b"9:NOTFOUND ,"
            subprocess.run([*mrod, "domain", "add", name.decode(), "--relay", "p1"], check=True, env=env,
                           capture_output=True)
            assert lookup(socketmap, b"relay_domains " + name) == b"%d:OK %s," % (len(name) + 3, name)
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0, log_path.read_text()


def test_a_busy_lookupd_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "mrod.toml"
        config.write_text(f'[database]\npath = "{tmp_path / "mrod.db"}"\n'
                          f'[lookupd]\nsocketmap = "127.0.0.1:{port}"\npolicy = ""\n'
                          f'[admin]\nlisten = "127.0.0.1:{free_port()}"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
        subprocess.run([sys.executable, "-m", "mrod", "--config", str(config), "init"],
                       capture_output=True, timeout=60, env=env, check=True)
        result = subprocess.run([sys.executable, "-m", "mrod", "--config", str(config), "serve"],
                                capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"mrod: error: lookupd.socketmap: cannot listen on 127.0.0.1:{port}: already in use "
        "(another program, or another mrod, listens there)")     # as `mrod lookupd` says it
