"""Network and system errors said in words for operators (panel, CLI, health history).

``str(OSError)`` reads "[Errno 111] Connect call failed ('192.0.2.1', 25)"; people get
"connection refused" and the raw text goes to the log (DEBUG) for whoever digs deeper.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import ssl

log = logging.getLogger("mrod.oserrors")

WORDS = {
    errno.ECONNREFUSED: "connection refused (nothing listens on that port)",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNRESET: "connection reset by the server",
    errno.EPIPE: "connection closed by the server",
    errno.EACCES: "permission denied",
    errno.ENOENT: "no such file or socket",
}
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def describe(exc: BaseException, what: str = "") -> str:
    """Words for ``exc``; ``what`` (e.g. "mx1.example.net port 25") says what was tried."""
    log.debug("%s: %r", what or "error", exc)
    prefix = f"{what}: " if what else ""
    if isinstance(exc, TimeoutError):
        return f"{prefix}timed out"
    if isinstance(exc, socket.gaierror):
        return f"{prefix}host name not found ({(exc.strerror or 'no address').lower()})"
    if isinstance(exc, ssl.SSLError):
        return f"{prefix}TLS handshake failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, OSError):
        number = exc.errno
        if number is None:       # asyncio's "Multiple exceptions: [Errno 111] …, [Errno 111] …"
            found = _ERRNO.search(str(exc))
            number = int(found.group(1)) if found else None
        if number is not None:
            return prefix + WORDS.get(number, os.strerror(number).lower())
        return prefix + (_ERRNO.sub("", str(exc)).strip() or type(exc).__name__)
    return prefix + (str(exc) or type(exc).__name__)
