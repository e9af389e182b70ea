"""Postfix policy delegation protocol codec (smtpd_policy_service), no I/O.

Request: ``name=value`` lines ended by an empty line; reply ``action=<value>`` and an empty
line, LF only. Unknown attributes are kept (and ignored by the decision); a malformed request
means "in case of trouble the server must not reply": the listener logs and closes.
"""

from __future__ import annotations

from mrod.lookupd.errors import BadRequest, TooLong

MAX_LINE = 8192          # one attribute (Postfix's longest are certificate subjects)
MAX_REQUEST = 64 * 1024  # a whole request
MAX_ATTRIBUTES = 100     # 3.7 sends about 30


class PolicyDecoder:
    """Feed bytes; ``next()`` returns one request as a dict, or None when more is needed."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._attrs: dict[str, str] = {}
        self._size = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> bool:
        return bool(self._buf) or bool(self._attrs)

    def next(self) -> dict[str, str] | None:
        while True:
            nl = self._buf.find(b"\n", 0, MAX_LINE + 1)
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    raise TooLong(f"policy attribute line longer than {MAX_LINE} bytes")
                return None
            line = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if not self._attrs:
                    raise BadRequest("empty policy request")
                request, self._attrs, self._size = self._attrs, {}, 0
                return request
            self._size += len(line) + 1
            if self._size > MAX_REQUEST or len(self._attrs) >= MAX_ATTRIBUTES:
                raise TooLong("policy request too large")
            name, sep, value = line.partition(b"=")
            if not sep or not name:
                raise BadRequest(f"policy attribute without name=value: {line[:60]!r}")
            try:
                self._attrs[name.decode("ascii")] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"policy attribute is not valid text: {line[:60]!r}") from None


def encode_action(action: str) -> bytes:
    """``action=<action>\\n\\n``; line breaks in a reason would end the reply early, so they go."""
    clean = " ".join(action.split())
    return f"action={clean}\n\n".encode("utf-8")
