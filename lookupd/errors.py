"""Protocol errors raised by the codecs. Each says how the listener must react."""

from __future__ import annotations


class ProtocolError(Exception):
    """Input that breaks the protocol. ``reply``: bytes to send before closing (or None).

    After a ProtocolError the stream cannot be trusted to be in step, so the listener
    always closes the connection (Postfix reconnects and resends when it needs to).
    """

    def __init__(self, message: str, reply: bytes | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class BadLength(ProtocolError):
    """A netstring length that is not decimal digits followed by ':'."""


class TooLong(ProtocolError):
    """A request larger than the configured limit."""


class BadTerminator(ProtocolError):
    """A netstring not followed by ','."""


class BadRequest(ProtocolError):
    """Well framed, but not a request of the protocol."""
