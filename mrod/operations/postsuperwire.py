"""The postsuper helper's line protocol (mrod.operations.postsuperd): pure encoding and checking,
no I/O, so both sides and the tests share one definition.

One request per connection::

    ACTION [CONFIG_DIR]\\n      hold | release | requeue | delete | expire; CONFIG_DIR absolute
    QUEUEID\\n                  one per line, [0-9A-Za-z]{5,40}
    …
    \\n                         an empty line ends the request

One reply line: ``OK <count>`` (the messages postsuper acted on) or ``ERR <reason>``.
Anything else — an unknown action, a bad id, too many ids or bytes, a relative directory, a
missing end — is refused whole: the helper runs nothing for a request it cannot read exactly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from mrod.infra.enums import QUEUE_ACTIONS, QueueAction

FLAGS = {QueueAction.HOLD: "-h", QueueAction.RELEASE: "-H", QueueAction.REQUEUE: "-r",
         QueueAction.DELETE: "-d", QueueAction.EXPIRE: "-e"}
# Short ids are hex, long ids (enable_long_queue_ids) base-52 letters and digits.
QUEUE_ID = re.compile(r"[0-9A-Za-z]{5,40}")
# A request larger than this is refused: 100k ids of 40 characters is ~4 MB, more than any
# caller sends at once (the queue actions and retention send in batches below this).
MAX_IDS = 100_000
MAX_BYTES = 64 + MAX_IDS * 41 + 4096 + 1
_DIR = re.compile(r"/[^\x00-\x20\x7f]*")
_DONE = re.compile(r"postsuper: [^:]+: (\d+) messages?")
_REPLY_OK = re.compile(r"OK (\d{1,9})")


class ProtocolError(ValueError):
    """A request or reply that is not one: the one-line reason."""


@dataclass(frozen=True)
class Request:
    action: QueueAction
    ids: tuple[str, ...]
    config_dir: str = ""       # "" = Postfix's default

    @property
    def flag(self) -> str:
        return FLAGS[self.action]


def encode_request(request: Request) -> bytes:
    head = f"{request.action} {request.config_dir}" if request.config_dir else str(request.action)
    return "".join([head, "\n", *(f"{i}\n" for i in request.ids), "\n"]).encode("ascii")


def complete(data: bytes) -> bool:
    """Whether the bytes read so far hold a whole request (its empty line)."""
    return data.startswith(b"\n") or b"\n\n" in data


def decode_request(data: bytes) -> Request:
    """The request in ``data`` (everything the client sent), or ProtocolError."""
    if len(data) > MAX_BYTES:
        raise ProtocolError(f"request larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("request is not ASCII") from None
    body, sep, rest = text.partition("\n\n")
    if not sep or rest:
        raise ProtocolError("request does not end with exactly one empty line")
    head, *lines = body.split("\n")
    action, _, config_dir = head.partition(" ")
    if action not in QUEUE_ACTIONS:
        raise ProtocolError(f"unknown action {action[:20]!r}")
    if config_dir and (not _DIR.fullmatch(config_dir) or os.path.normpath(config_dir) != config_dir):
        raise ProtocolError("config directory must be a plain absolute path")
    if not lines:
        raise ProtocolError("no queue ids")
    if len(lines) > MAX_IDS:
        raise ProtocolError(f"more than {MAX_IDS} queue ids")
    for line in lines:
        if not QUEUE_ID.fullmatch(line):
            raise ProtocolError(f"{line[:45]!r} is not a Postfix queue id")
    return Request(QueueAction(action), tuple(dict.fromkeys(lines)), config_dir)


def ok(count: int) -> bytes:
    return f"OK {count}\n".encode()


def err(reason: str) -> bytes:
    """One line, printable, bounded: the reason reaches mrod's log and the operator's screen."""
    line = " ".join("".join(c if c.isprintable() else " " for c in reason).split())[:300]
    return f"ERR {line or 'failed'}\n".encode()


def decode_reply(data: bytes) -> int:
    """The count of an ``OK`` reply; ProtocolError with the helper's reason otherwise."""
    line = data.decode("utf-8", "replace").rstrip("\n")
    if found := _REPLY_OK.fullmatch(line):
        return int(found.group(1))
    if line.startswith("ERR "):
        raise ProtocolError(line[4:])
    raise ProtocolError(f"unreadable reply {line[:60]!r}" if line else "no reply")


def done_count(stderr: str) -> int:
    """What postsuper says it did ("postsuper: Placed on hold: 2 messages"), summed."""
    return sum(int(n) for n in _DONE.findall(stderr))
