"""Real Postfix for tests: a private instance on a free 127.0.0.1 port (a pytest plugin).

Needs root and Debian's postfix: outside CI such tests skip with the reason, under CI (CI=true)
they fail (tests.harness.require). Mark them ``@pytest.mark.postfix``.

An instance lives in its own directory D (tempfile.mkdtemp under /tmp, mode 0755: smtpd and
friends chroot into the queue directory and drop privileges, so pytest's 0700 tmp_path will not
do) — ``D/etc/{main,master}.cf``, ``D/spool``, ``D/data`` (owned by postfix), ``D/postfix.log`` —
and is driven only through ``-c D/etc``: /etc/postfix/main.cf need not exist. As root,
postqueue and postsuper accept ``-c`` without alternate_config_directories; postmap needs a
main.cf, so it runs with the instance's too. The files (tests/harness/postfixcf.py) layer a
hermetic base (no local delivery, no DNS, nothing leaves the machine, short queue timers, the
test client NOT in ``mynetworks``), then mrod's own ``postfixlines.main_cf/master_cf(config)``
lines — what users install is what is tested — then the test's ``settings``.

    @pytest.mark.postfix
    def test_x(mrod_factory, postfix_factory, smtp_sink):
        m = mrod_factory()                        # real `mrod lookupd` (tests/harness/mrodproc.py)
        pf = postfix_factory(m.config)            # started; stopped and removed at teardown
        pf.smtp(["joe@example.com"], message)     # SmtpReply(250, ...) or raises SmtpRejected
        pf.rcpt_reply("joe@example.com")          # SmtpReply(code, text): dialogue up to RCPT only
        pf.postmap_q("example.com", m.socketmap_table("relay_domains"))   # (rc, value, stderr)
        pf.postmap_many(keys, table)              # postmap -q -: many keys, one connection
        pf.queue(); pf.wait_for_queue(lambda q: q == [])                # parsed postqueue -j
        pf.flush(); pf.flush_site("example.com"); pf.reload()
        mark = pf.log_mark(); pf.wait_for_log(r"status=sent", since=mark); pf.log_text()

``postfix_factory(mrod_config=None, *, start=True, mynetworks="127.0.0.2/32", settings=None,
master_extra="")`` is function-scoped: use it when a test queues mail (a fresh queue per test).
``module_postfix_factory`` shares instances across a module, for tests that only look up or
stop at RCPT (or call ``delete_queue()``). A failing test shows the log tail
(tests.harness.diagnostics); MROD_KEEP_POSTFIX=1 keeps the directories.

Cost: a start or a stop takes ~0.2 s — once main.cf is dated in the past (see ``_write``) and
the master's exit is judged by its state, not its pid (it lingers as a zombie here).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from mrod.answers import postfixlines
from mrod.infra.config import Config
from tests.harness import diagnostics, free_port, require, require_root, require_tool, smtpclient
from tests.harness.postfixcf import MASTER_CF_DIST, base_settings, main_cf_text, master_cf_text, parse_main_cf
from tests.harness.smtpclient import SmtpRejected, SmtpReply

__all__ = ["PostfixInstance", "SmtpRejected", "SmtpReply", "require_postfix"]

# Generous: under `make test` several workers share the cores, and a start that is only slow
# must not fail the test (a process that exits is seen at once, whatever this says).
START_TIMEOUT = 60.0


class PostfixInstance:
    def __init__(self, mrod_config: Config | None = None, *, mynetworks: str = "127.0.0.2/32",
                 settings: dict[str, str] | None = None, master_extra: str = "") -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="mrod-postfix-", dir="/tmp"))
        os.chmod(self.directory, 0o755)
        self.port = free_port()
        self.etc = self.directory / "etc"
        self.log_path = self.directory / "postfix.log"
        self.settings = base_settings(self.directory, mynetworks)
        extra_master = master_extra
        if mrod_config is not None:
            self.settings.update(parse_main_cf(postfixlines.main_cf(mrod_config)))
            extra_master = postfixlines.master_cf(mrod_config) + extra_master
        self.settings.update(settings or {})
        self.master_cf = master_cf_text(self.port, extra_master)
        self.master_pid: int | None = None
        self._write()

    def _write(self) -> None:
        self.etc.mkdir()
        (self.directory / "spool").mkdir()   # `postfix start` makes the queue's subdirectories
        _postfix_dir(self.directory / "data")
        (self.etc / "main.cf").write_text(main_cf_text(self.settings))
        (self.etc / "master.cf").write_text(self.master_cf)
        # Postfix re-reads a file whose mtime is within the last second or two until it is
        # older ("hot" file: it may be half written) — 300 ms naps costing ~2 s per start.
        # These files are complete: date them in the past.
        past = time.time() - 60
        for name in ("main.cf", "master.cf"):
            os.utime(self.etc / name, (past, past))

    # -- commands ----------------------------------------------------------------------------

    def run(self, *args: str, input: str | bytes | None = None, timeout: float = 60.0
            ) -> subprocess.CompletedProcess[str]:
        """A Postfix command with ``-c D/etc`` inserted after the program name."""
        text = not isinstance(input, bytes)
        result = subprocess.run([args[0], "-c", str(self.etc), *args[1:]], input=input, capture_output=True,
                                text=text, timeout=timeout)
        if not text:
            result.stdout = result.stdout.decode("utf-8", "replace")
            result.stderr = result.stderr.decode("utf-8", "replace")
        return result

    def postconf(self, name: str) -> str:
        return self.run("postconf", "-h", name).stdout.strip()

    def start(self) -> "PostfixInstance":
        diagnostics.watch(self)
        result = self.run("postfix", "start")
        if result.returncode != 0:
            raise AssertionError(f"postfix start failed ({result.returncode}): {result.stderr.strip()}\n"
                                 f"{diagnostics.tail(self.log_text())}")
        self.master_pid = self._read_master_pid()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._banner():
            if time.monotonic() > deadline:
                raise AssertionError(f"Postfix did not answer on 127.0.0.1:{self.port} within {START_TIMEOUT:g}s\n"
                                     f"{diagnostics.tail(self.log_text())}")
            time.sleep(0.05)
        return self

    def reload(self) -> None:
        """``postfix reload``: daemons are replaced (and their caches dropped) as they finish."""
        result = self.run("postfix", "reload")
        if result.returncode != 0:
            raise AssertionError(f"postfix reload failed ({result.returncode}): {result.stderr.strip()}")

    def _read_master_pid(self) -> int | None:
        try:
            return int((self.directory / "spool" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _banner(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.settimeout(5)
                return s.recv(100).startswith(b"220 ")
        except OSError:
            return False

    def stop(self) -> None:
        """``postfix stop``, then end any process of this instance that is left."""
        self.master_pid = self.master_pid or self._read_master_pid()
        if self.master_pid is not None:
            self.run("postfix", "stop")
            deadline = time.monotonic() + 10
            while _alive(self.master_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        for pid in self._processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.master_pid = None
        diagnostics.unwatch(self)

    def _processes(self) -> list[int]:
        """Processes of this instance: master's process group, or rooted/working in D."""
        found = []
        prefix = str(self.directory) + "/"
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                mine = self.master_pid is not None and os.getpgid(pid) == self.master_pid
                for link in ("root", "cwd"):
                    mine = mine or (os.readlink(f"/proc/{pid}/{link}") + "/").startswith(prefix)
            except OSError:
                continue
            if mine and pid != os.getpid():
                found.append(pid)
        return found

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- lookups -----------------------------------------------------------------------------

    def postmap_q(self, key: str, table: str) -> tuple[int, str, str]:
        """``postmap -q KEY TABLE``: (exit status, value, stderr). 0 found, 1 not found, and a
        lookup error is fatal (exit 1 with ``fatal:`` on stderr)."""
        result = self.run("postmap", "-q", key, table)
        return result.returncode, result.stdout.rstrip("\n"), result.stderr.strip()

    def postmap_many(self, keys: list[str], table: str) -> tuple[int, dict[str, str], str]:
        """``postmap -q - TABLE``, keys one a line on stdin, all over one connection:
        (exit status, {key: value} for keys found, stderr)."""
        for key in keys:
            if "\n" in key or "\t" in key:
                raise ValueError(f"postmap -q - cannot send {key!r}")
        result = self.run("postmap", "-q", "-", table, input="".join(k + "\n" for k in keys))
        found = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition("\t")
            found[key] = value
        return result.returncode, found, result.stderr.strip()

    # -- the queue ---------------------------------------------------------------------------

    def queue(self) -> list[dict[str, Any]]:
        """``postqueue -j``: one dict per queued message (empty list: empty queue)."""
        result = self.run("postqueue", "-j")
        if result.returncode != 0:
            raise AssertionError(f"postqueue -j failed ({result.returncode}): {result.stderr.strip()}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def flush(self) -> None:
        """``postqueue -f``: deliver all queued mail now (also un-throttles dead destinations)."""
        result = self.run("postqueue", "-f")
        if result.returncode != 0:
            raise AssertionError(f"postqueue -f failed ({result.returncode}): {result.stderr.strip()}")

    def flush_site(self, domain: str) -> tuple[int, str]:
        """``postqueue -s DOMAIN``: (exit status, stderr); 69 when flush is not configured for it."""
        result = self.run("postqueue", "-s", domain)
        return result.returncode, result.stderr.strip()

    def delete_queue(self) -> None:
        """``postsuper -d ALL``: an empty queue for the next test sharing this instance."""
        result = self.run("postsuper", "-d", "ALL")
        if result.returncode != 0:
            raise AssertionError(f"postsuper -d ALL failed ({result.returncode}): {result.stderr.strip()}")

    def wait_for_queue(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
                       ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            entries = self.queue()
            if predicate(entries):
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(f"queue never matched within {timeout:g}s; queue: {entries}")
            time.sleep(0.1)

    # -- the log -----------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """A position in the log: pass it as ``since`` to look only at later lines."""
        return len(self.log_text())

    def wait_for_log(self, pattern: str, timeout: float = 20.0, since: int = 0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.log_text(), since)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matched {pattern!r} within {timeout:g}s")
            time.sleep(0.1)

    def diagnostics(self) -> list[tuple[str, str]]:
        return [(f"postfix log ({self.directory})", diagnostics.tail(self.log_text(), 60))]

    # -- SMTP (tests/harness/smtpclient.py) -------------------------------------------------

    def rcpt_reply(self, recipient: str, **options: Any) -> SmtpReply:
        """The reply to RCPT TO:<recipient>; the dialogue stops there, nothing is queued.
        Options: sender=, smtputf8=."""
        return smtpclient.rcpt_reply(self.port, recipient, **options)

    def smtp(self, recipients: list[str], message: bytes, **options: Any) -> SmtpReply:
        """Send one message: the reply to the end of DATA (``.queue_id``), or SmtpRejected with
        the code of the first command refused. Options: sender=, smtputf8=."""
        return smtpclient.send(self.port, recipients, message, **options)


def _postfix_dir(path: Path) -> None:
    path.mkdir()
    os.chown(path, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def require_postfix() -> None:
    require_root("a real Postfix instance")
    for tool in ("postfix", "postmap", "postqueue", "postsuper", "postconf"):
        require_tool(tool, "postfix")
    require(MASTER_CF_DIST.is_file(), f"{MASTER_CF_DIST} is missing (apt-get install postfix)")


class _Factory:
    def __init__(self) -> None:
        self.made: list[PostfixInstance] = []

    def __call__(self, mrod_config: Config | None = None, *, start: bool = True, **options: Any) -> PostfixInstance:
        require_postfix()
        instance = PostfixInstance(mrod_config, **options)
        self.made.append(instance)
        return instance.start() if start else instance

    def close(self) -> None:
        for instance in self.made:
            instance.stop()
            if os.environ.get("MROD_KEEP_POSTFIX"):
                print(f"kept Postfix instance directory {instance.directory}")
            else:
                instance.remove()


@pytest.fixture
def postfix_factory() -> Iterator[Callable[..., PostfixInstance]]:
    factory = _Factory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def module_postfix_factory() -> Iterator[Callable[..., PostfixInstance]]:
    factory = _Factory()
    try:
        yield factory
    finally:
        factory.close()
