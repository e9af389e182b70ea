"""Postfix tcp_table protocol codec, no I/O.

Request ``get <%-encoded key>\\n``; reply ``200 <%-encoded value>\\n`` (found),
``500 <text>\\n`` (not found, connection kept), ``400 <text>\\n`` (temporary error; Postfix
disconnects and retries). Replies are at most 4096 bytes with the newline, LF only.
"""

from __future__ import annotations

from mrod.infra.limits import MAX_REQUEST_BYTES, TCP_TABLE_MAX_REPLY, TEMP_REASON_MAX

from mrod.lookupd.errors import BadRequest, TooLong

_HEX = b"0123456789abcdefABCDEF"
# Postfix's hex_quote keeps printable ASCII except '%' and space.
_SAFE = frozenset(b for b in range(0x21, 0x7F) if b != 0x25)


def quote(data: bytes) -> bytes:
    return b"".join(bytes((b,)) if b in _SAFE else b"%%%02X" % b for b in data)


def unquote(data: bytes) -> bytes:
    """Decode %XX (any case). A '%' not followed by two hex digits is an error."""
    if b"%" not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x25:
            pair = data[i + 1:i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise BadRequest(f"bad %-encoding in {data[:60]!r}", reply=encode_reply("TEMP", "bad %-encoding"))
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return bytes(out)


class LineDecoder:
    """Feed bytes; ``next()`` returns one line without its newline, or None when more is needed."""

    def __init__(self, max_length: int = 3 * MAX_REQUEST_BYTES + 8) -> None:
        self.max_length = max_length
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def next(self) -> bytes | None:
        nl = self._buf.find(b"\n", 0, self.max_length + 1)
        if nl < 0:
            if len(self._buf) > self.max_length:
                raise TooLong(f"request line longer than {self.max_length} bytes",
                              reply=encode_reply("TEMP", "request too long"))
            return None
        line = bytes(self._buf[:nl])
        del self._buf[:nl + 1]
        # Postfix never sends a raw CR (it would be %0D); accept CRLF from people testing by hand.
        return line[:-1] if line.endswith(b"\r") else line


def parse_request(line: bytes) -> bytes:
    """``b"get example.com"`` -> b"example.com" (decoded)."""
    command, sep, key = line.partition(b" ")
    if command.lower() != b"get" or not sep:
        raise BadRequest(f"unsupported tcp_table request {line[:60]!r}",
                         reply=encode_reply("TEMP", "only 'get <key>' is supported"))
    return unquote(key)


def encode_reply(status: str, value: str) -> bytes:
    if status == "OK":
        reply = b"200 " + quote(value.encode("utf-8")) + b"\n"
        if len(reply) <= TCP_TABLE_MAX_REPLY:
            return reply
        status, value = "TEMP", "reply too large for Postfix's tcp_table"
    if status == "NOTFOUND":
        return b"500 not-found\n"
    # 200 characters quote to at most 2400 bytes: always within the 4096-byte limit.
    return b"400 " + quote(value[:TEMP_REASON_MAX].encode("utf-8")) + b"\n"
