"""Where log lines go and how they look: plain stderr with a timestamp, or journald's way.

Under systemd (JOURNAL_STREAM names our stderr) the journal stamps each line itself, so a line
carries no timestamp of its own but a ``<N>`` syslog priority prefix (sd-daemon(3)), which lets
``journalctl -p warning -u mrod`` filter. Every line of a multi-line record (a traceback) gets
the prefix, so none falls back to the default priority.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL = "%(name)s: %(message)s"
# syslog(3) priorities: err 3, warning 4, info 6, debug 7 (crit 2 for CRITICAL).
PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def priority(levelno: int) -> int:
    for level, number in sorted(PRIORITY.items(), reverse=True):
        if levelno >= level:
            return number
    return 7


class JournalFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(JOURNAL)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])


def under_journald(stream: TextIO, env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """True when ``stream`` is the journal stream systemd gave us (not merely inherited)."""
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


_installed: logging.Handler | None = None


def configure(level: str, stream: TextIO | None = None) -> None:
    """Install our one handler on the root logger (replacing the one a previous call made)."""
    global _installed
    root = logging.getLogger()
    if root.handlers and _installed is None:
        return      # logging set up by whoever embeds us (as logging.basicConfig would leave it)
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter() if under_journald(stream) else logging.Formatter(PLAIN))
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    _installed = handler
    root.setLevel(getattr(logging, level))
