"""Shared pieces of the real-Postfix tests: message payloads and the two database faults — a
lock held by another process, a corrupt file moved into place.

Fixtures (harness: tests/harness/postfix.py, mrodproc.py, smtpsink.py) are used directly by
the test modules; what lives here is plain helpers. Seeding: tests/data.py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def payload(tag: str, to: str) -> bytes:
    """A message that shows any change in transit: 8-bit text, lines starting with dots (SMTP
    dot-stuffing), trailing white space, an empty line inside the body."""
    return (
        f"From: Sender <sender@client.test>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: mrod test {tag} \u00e9t\u00e9\r\n"
        f"Message-ID: <{tag}@client.test>\r\n"
        f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n"
        f"\r\n"
        f"{tag}\r\n"
        f".a line that starts with a dot\r\n"
        f"..and two\r\n"
        f"trailing space \r\n"
        f"\u00fcml\u00e4uts \u2014 and a dash\r\n"
        f"\r\n"
        f"last line\r\n"
    ).encode("utf-8")


def without_received(content: bytes) -> bytes:
    """The message as the client sent it: Postfix adds one Received: header (with continuation
    lines) at the top and changes nothing else."""
    lines = content.split(b"\r\n")
    assert lines[0].startswith(b"Received: "), content[:200]
    i = 1
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


# -- faults -------------------------------------------------------------------------------------

_HOLD_LOCK = r"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
try:
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE relay SET updated_at = updated_at")
except sqlite3.OperationalError as exc:
    print("refused", exc, flush=True)
    sys.exit(3)
print("locked", flush=True)
sys.stdin.read()            # hold the lock until the test closes our stdin
conn.execute("ROLLBACK")
conn.close()
"""


class LockHolder:
    """Another process holding the database with ``locking_mode=EXCLUSIVE`` and an open write
    transaction: in WAL mode this is the lock that keeps readers out (an ordinary writer does
    not). SQLite grants it only while no other connection has the file open."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.status = self.process.stdout.readline().strip()   # "locked" or "refused <why>"
        self.locked = self.status == "locked"
        if not self.locked:
            self.process.wait(10)

    def release(self) -> None:
        """Close our end of the pipe: the holder rolls back, closes and exits 0."""
        if self.process.poll() is None:
            assert self.process.stdin is not None and self.process.stderr is not None
            self.process.stdin.close()
            code = self.process.wait(10)
            assert code == 0, self.process.stderr.read()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def __enter__(self) -> "LockHolder":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_pipes()


def plain_read(path: Path) -> str:
    """What an ordinary reader (no waiting) gets: 'ok' or the SQLite error."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0)
        try:
            conn.execute("SELECT count(*) FROM domain").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return "ok"


def replace_with_corrupt(path: Path) -> Path:
    """Move a corrupt file over the database (as a botched restore would); returns a good copy
    to move back."""
    good = path.with_name(path.name + ".good")
    src, dst = sqlite3.connect(path), sqlite3.connect(good)
    try:
        # Empty the WAL first, so the -wal file left beside the path holds nothing to replay.
        src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    corrupt = path.with_name(path.name + ".corrupt")
    # A valid header followed by garbage: SQLite opens it and fails on the first read.
    corrupt.write_bytes(b"SQLite format 3\x00" + os.urandom(16384))
    os.replace(corrupt, path)
    return good
