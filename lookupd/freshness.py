"""Per-lookup checks that cost a fraction of a microsecond (figures in BENCHMARKS.md).

``CommitMark``: has any process committed since the last look? In WAL mode SQLite keeps the
WAL-index header at the start of the ``-shm`` file (the documented file format: two copies of a
48-byte header; a commit rewrites them, with a new change counter and frame count), so
comparing its first 48 bytes through a read-only mmap tells — 0.05 µs, against 1.6–4.6 µs for
``PRAGMA data_version``, which stays the fallback (no ``-shm``: not WAL mode, or unreadable).

``EntryWatch``: has anything happened to the database's directory entry (renamed, removed,
replaced)? inotify on the directory; a lookup asks the kernel how many event bytes are pending
(one ioctl, 0.2 µs) and only then stats the path — instead of an ``os.stat`` per lookup
(0.9–3 µs). Without inotify (not Linux, no instances left) every lookup stats the path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import logging
import mmap
import os
import termios
from pathlib import Path

from mrod.infra.dbapi import SyncConnection

log = logging.getLogger("mrod.lookupd")

_HEADER = 48
_IN_CREATE, _IN_DELETE, _IN_MOVED_FROM, _IN_MOVED_TO = 0x100, 0x200, 0x40, 0x80
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_IN_MASK = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_DELETE_SELF | _IN_MOVE_SELF
_NONE_PENDING = bytes(4)


class CommitMark:
    """``read()`` returns a value that changes whenever a transaction is committed."""

    def __init__(self, db_path: Path, conn: SyncConnection) -> None:
        self.conn = conn
        self._map: mmap.mmap | None = None
        try:
            fd = os.open(f"{db_path}-shm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if os.fstat(fd).st_size >= _HEADER:
                self._map = mmap.mmap(fd, _HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
        except (OSError, ValueError):
            self._map = None
        finally:
            os.close(fd)

    @property
    def uses_header(self) -> bool:
        return self._map is not None

    def read(self) -> object:
        if self._map is not None:
            return self._map[:_HEADER]
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


class EntryWatch:
    """``pending()`` is True when the path may name another file than before (check it).

    One inotify instance per directory and process, shared by every holder (the lookup and the
    policy service): instances are a scarce per-user resource (128 by default)."""

    def __init__(self, db_path: Path) -> None:
        directory = Path(db_path).absolute().parent
        watch = _watches.get(directory)
        if watch is None:
            watch = _watches[directory] = _DirectoryWatch(directory)
        watch.users += 1
        self._watch = watch
        self._seen = watch.generation

    @property
    def uses_inotify(self) -> bool:
        return self._watch.fd >= 0

    def pending(self) -> bool:
        watch = self._watch
        if watch.fd < 0:
            return True
        generation = watch.poll()
        if generation == self._seen:
            return False
        self._seen = generation
        return True

    def close(self) -> None:
        watch, self._watch = self._watch, _CLOSED
        if watch is _CLOSED:
            return
        watch.users -= 1
        if watch.users == 0:
            if watch.directory is not None:
                _watches.pop(watch.directory, None)
            watch.close()


class _DirectoryWatch:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.fd = -1 if directory is None else _inotify_on(directory)
        self.generation = 0      # bumped whenever events were read
        self.users = 0
        self._count = bytearray(4)

    def poll(self) -> int:
        fcntl.ioctl(self.fd, termios.FIONREAD, self._count)
        if self._count != _NONE_PENDING:
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass
            self.generation += 1
        return self.generation

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_watches: dict[Path, _DirectoryWatch] = {}
_CLOSED = _DirectoryWatch(None)


_libc: ctypes.CDLL | None = None


def _inotify_on(directory: Path) -> int:
    """A non-blocking inotify fd watching the directory's entries, or -1."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return -1
    if fd < 0:
        log.warning("inotify unavailable (%s): lookupd stats the database path per lookup",
                    os.strerror(ctypes.get_errno()))
        return -1
    if _libc.inotify_add_watch(fd, os.fsencode(directory), _IN_MASK) < 0:
        log.warning("cannot watch %s (%s): lookupd stats the database path per lookup",
                    directory, os.strerror(ctypes.get_errno()))
        os.close(fd)
        return -1
    return fd
