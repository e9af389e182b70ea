"""Restarts that Postfix never notices (issue 10): a real Postfix takes a steady stream of SMTP
sessions to relay domains (new recipients each time, so every session makes fresh lookups)
while mrod restarts five times — and not one RCPT is deferred.

* ``mrod serve`` reloaded with SIGHUP: the supervisor keeps the lookupd sockets, starts a new
  lookupd process on them, and stops the old one once the new one serves.
* ``mrod serve`` stopped and started again under socket activation: this test plays systemd
  (``mrod.socket``): it holds the listening sockets and passes them as LISTEN_FDS; while no
  mrod runs, Postfix's connections wait in the backlog.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mrod.infra import endpoints
from mrod.lookupd import sockets as handover
from tests.harness import free_port
from tests.data import seed_file_sync
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix

RESTARTS = 5
DOMAINS = [f"d{i}.restart.example" for i in range(20)]
MAX_SESSIONS = 3000
MAX_SECONDS = 180.0


class Stream(threading.Thread):
    """SMTP sessions one after another (bounded in count and time); keeps every non-250."""

    def __init__(self, postfix) -> None:
        super().__init__(daemon=True)
        self.postfix = postfix
        self.stop = threading.Event()
        self.sessions = 0
        self.refused: list[tuple[int, int, str]] = []

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set() and self.sessions < MAX_SESSIONS and time.monotonic() - started < MAX_SECONDS:
            i = self.sessions
            reply = self.postfix.rcpt_reply(f"u{i}+x@{DOMAINS[i % len(DOMAINS)]}", sender=f"s{i}@client.test")
            if reply.code != 250:
                self.refused.append((i, reply.code, reply.text))
            self.sessions += 1

    def wait_for(self, more: int, timeout: float = 60.0) -> None:
        target, deadline = self.sessions + more, time.monotonic() + timeout
        while self.sessions < target:
            assert self.is_alive(), "the SMTP stream ended early"
            assert time.monotonic() < deadline, f"only {self.sessions} sessions"
            time.sleep(0.02)


def serve_config(mrod) -> None:
    """`mrod serve` needs a panel port of its own and no jobs that talk to the outside."""
    with open(mrod.config_path, "a") as f:
        f.write(f'\n[admin]\nlisten = "127.0.0.1:{free_port()}"\nbcrypt_rounds = 4\n'
                '[health]\nenabled = false\n[queue]\nenabled = false\n[checks]\nenabled = false\n')


def setup(mrod_factory, smtp_sink):
    """The configured mrod; the caller binds its ports before starting Postfix (the ports
    were chosen free, and the sooner they are taken the less another process can take them)."""
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[dict(name="p1", host="127.0.0.1", port=smtp_sink.port)],
         domains=[dict(name=d, relay="p1") for d in DOMAINS])
    serve_config(mrod)
    return mrod


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def stop(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, log.read_text()


def assert_delivered(postfix, smtp_sink, tag: str) -> None:
    rcpt = f"{tag}@{DOMAINS[0]}"
    already = len(smtp_sink.messages)
    postfix.smtp([rcpt], payload(tag, rcpt))
    assert smtp_sink.wait_for(already + 1)[-1].rcpt_tos == (rcpt,)


def test_sighup_restarts_lookupd_without_a_deferral(mrod_factory, postfix_factory, smtp_sink) -> None:
    mrod = setup(mrod_factory, smtp_sink)
    log = mrod.directory / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(mrod.command("serve"), stdout=out, stderr=out, env=mrod._env())
    stream = None
    try:
        wait_until(lambda: len(children(proc.pid)) == 2, 30, f"mrod serve did not start:\n{log.read_text()}")
        postfix = postfix_factory(mrod.config)
        stream = Stream(postfix)
        wait_until(lambda: postfix.rcpt_reply(f"first@{DOMAINS[0]}").code == 250, 30, "no answer from mrod")
        stream.start()
        stream.wait_for(20)
        for _ in range(RESTARTS):
            before = children(proc.pid)
            proc.send_signal(signal.SIGHUP)
            # Both children are replaced (lookupd first: new one up, then the old one stops).
            wait_until(lambda before=before: not (children(proc.pid) & before) and len(children(proc.pid)) == 2, 60,
                       f"the children were not replaced:\n{log.read_text()}")
            stream.wait_for(20)
        stream.stop.set()
        stream.join(30)
        assert stream.refused == [], stream.refused[:10]
        assert stream.sessions >= 20 * (RESTARTS + 1)
        assert_delivered(postfix, smtp_sink, "after-sighup")
    finally:
        if stream is not None:
            stream.stop.set()
        stop(proc, log)
    assert proc.returncode == 0


LAUNCH = """
import os, sys
fds = [int(fd) for fd in sys.argv[1].split(",")]
for i, fd in enumerate(fds):          # what systemd does: the sockets at fd 3, 4, ...
    os.dup2(fd, 3 + i, inheritable=True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=sys.argv[2])
os.execv(sys.argv[3], sys.argv[3:])
"""


def test_socket_activated_restarts_without_a_deferral(mrod_factory, postfix_factory, smtp_sink) -> None:
    mrod = setup(mrod_factory, smtp_sink)
    # The sockets systemd would hold for mrod.socket; unnamed, so mrod matches them by address.
    eps = [endpoints.parse(f"127.0.0.1:{mrod.socketmap_port}")]
    eps += [endpoints.parse(f"127.0.0.1:{p}") for p in mrod.tcp_ports.values()]
    held = [handover.bind(ep) for ep in eps]
    try:
        postfix = postfix_factory(mrod.config)
        run_activated(mrod, postfix, smtp_sink, held)
    finally:
        for s in held:
            s.close()


def run_activated(mrod, postfix, smtp_sink, held: list[socket.socket]) -> None:
    log = mrod.directory / "serve.log"
    stream = Stream(postfix)

    def launch() -> subprocess.Popen:
        fds = ",".join(str(s.fileno()) for s in held)
        names = ":".join("mrod.socket" for _ in held)
        with open(log, "ab") as out:
            return subprocess.Popen([sys.executable, "-c", LAUNCH, fds, names, *mrod.command("serve")],
                                    pass_fds=[s.fileno() for s in held], stdout=out, stderr=out, env=mrod._env())

    proc = launch()
    try:
        wait_until(lambda: postfix.rcpt_reply(f"first@{DOMAINS[0]}").code == 250, 30, "no answer from mrod")
        stream.start()
        stream.wait_for(20)
        for _ in range(RESTARTS):
            stop(proc, log)          # `systemctl restart mrod`: stop, then start
            proc = launch()
            stream.wait_for(20)
        stream.stop.set()
        stream.join(30)
        assert stream.refused == [], stream.refused[:10]
        assert "refused" not in postfix.log_text()
        assert_delivered(postfix, smtp_sink, "after-activation")
    finally:
        stream.stop.set()
        stop(proc, log)
