"""Postfix socketmap protocol codec (netstrings), no I/O.

Request: ``<len>:<name> <key>,``; reply ``<len>:OK <value>,`` / ``NOTFOUND `` / ``TEMP <reason>``.
The length is decimal digits then ':' (no spaces, no newlines between netstrings).
"""

from __future__ import annotations

from mrod.infra.limits import MAX_REQUEST_BYTES, SOCKETMAP_MAX_REPLY, TEMP_REASON_MAX

from mrod.lookupd.errors import BadLength, BadRequest, BadTerminator, TooLong

# Enough digits for any length we accept; more is an attack or garbage.
_MAX_DIGITS = len(str(MAX_REQUEST_BYTES)) + 1


class NetstringDecoder:
    """Feed bytes; ``next()`` returns one complete payload, or None when more bytes are needed."""

    def __init__(self, max_length: int = MAX_REQUEST_BYTES) -> None:
        self.max_length = max_length
        self._buf = bytearray()
        self._length: int | None = None   # length of the netstring being read, once its header is in
        self._start = 0                   # where its payload starts in _buf

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> bool:
        """True while a partial netstring is buffered."""
        return bool(self._buf)

    def whole(self, data: bytes) -> bytes | None:
        """The payload when ``data`` is exactly one well-formed netstring and nothing is
        buffered — how Postfix sends (one request, then it waits for the reply) — else None:
        feed() and next() then do it the long way, with every check and error."""
        if self._buf:
            return None
        colon = data.find(b":", 0, _MAX_DIGITS + 1)
        if colon <= 0 or data[-1] != 0x2C:
            return None
        digits = data[:colon]
        if not digits.isdigit():
            return None
        length = int(digits)
        if length != len(data) - colon - 2 or length > self.max_length:
            return None
        return data[colon + 1:-1]

    def next(self) -> bytes | None:
        if self._length is None:
            colon = self._buf.find(b":", 0, _MAX_DIGITS + 1)
            if colon < 0:
                head = bytes(self._buf[:_MAX_DIGITS + 1])
                if head and not head.isdigit():
                    raise BadLength(f"netstring length is not digits: {head[:20]!r}")
                if len(self._buf) > _MAX_DIGITS:
                    raise TooLong(f"netstring length has more than {_MAX_DIGITS} digits")
                return None
            digits = bytes(self._buf[:colon])
            if not digits.isdigit():
                raise BadLength(f"netstring length is not digits: {digits[:20]!r}")
            length = int(digits)
            if length > self.max_length:
                raise TooLong(f"request of {length} bytes exceeds the limit of {self.max_length}")
            self._length, self._start = length, colon + 1
        end = self._start + self._length
        if len(self._buf) < end + 1:
            return None
        if self._buf[end] != 0x2C:  # ','
            raise BadTerminator(f"netstring not terminated by ',' (got {bytes(self._buf[end:end + 1])!r})")
        payload = bytes(self._buf[self._start:end])
        del self._buf[:end + 1]
        self._length = None
        return payload


def parse_request(payload: bytes) -> tuple[str, bytes]:
    """``b"relay_domains example.com"`` -> ("relay_domains", b"example.com"). The key may hold
    spaces (quoted local parts): split at the first space only."""
    name, sep, key = payload.partition(b" ")
    if not sep or not name:
        raise BadRequest(f"socketmap request without 'name key': {payload[:60]!r}")
    try:
        return name.decode("ascii"), key
    except UnicodeDecodeError:
        raise BadRequest(f"socketmap map name is not ASCII: {name[:60]!r}") from None


def encode(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


def encode_reply(status: str, value: str) -> bytes:
    """A reply netstring. 'OK' always carries a value (a bare OK is 'not found' to Postfix 3.7);
    oversized values become TEMP, as Postfix would refuse them anyway."""
    if status == "TEMP":
        value = value[:TEMP_REASON_MAX]
    payload = f"{status} {value}".encode("utf-8", "replace")
    if len(payload) > SOCKETMAP_MAX_REPLY:
        payload = b"TEMP reply too large for Postfix"
    return encode(payload)
