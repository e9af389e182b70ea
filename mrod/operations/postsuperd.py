"""The root side of mrod's postsuper helper: one request on stdin, one reply on stdout.

Postfix's ``postsuper`` runs only as root, and ``mrod serve`` runs as user mrod with
NoNewPrivileges. systemd's mrod-postsuper.socket (Accept=yes, group mrod, mode 0660) starts
this program as root for each connection with the connection as stdin and stdout
(mrod-postsuper@.service); mrod's side is mrod.operations.postsuper with
``[postfix] postsuper = "unix:/run/mrod-postsuper.sock"``.

It does one thing: ``/usr/sbin/postsuper [-c DIR] FLAG -`` with the request's queue ids on
stdin, and answers the count postsuper reports. The request is read whole and checked
(mrod.operations.postsuperwire) before anything runs; a config directory must be one root
controls (owned by root, not writable by others, like its main.cf) — a main.cf names the queue
directory postsuper works in, and the caller is not root. No config file, no database, nothing
else imported: ``python3 -I -m mrod.operations.postsuperd``.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

from mrod.operations import postsuperwire as wire

POSTSUPER = "/usr/sbin/postsuper"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
READ_SECONDS = 30          # a client that never finishes its request
RUN_SECONDS = 600          # a huge queue; the unit's RuntimeMaxSec is the outer bound


def read_request(fd: int) -> bytes:
    data = b""
    while not wire.complete(data) and len(data) <= wire.MAX_BYTES:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _root_owned(path: str) -> bool:
    st = os.stat(path)
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def check_config_dir(path: str) -> str | None:
    """Why ``path`` may not be given to postsuper as root, or None when it may."""
    try:
        if not os.path.isdir(path) or os.path.realpath(path) != path:
            return f"{path} is not a directory (symbolic links are not followed)"
        if not _root_owned(path) or not _root_owned(os.path.join(path, "main.cf")):
            return f"{path} or its main.cf is not root's alone (owned by root, not group/other-writable)"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    return None


def run(request: wire.Request) -> bytes:
    """postsuper for a checked request: the reply line."""
    if request.config_dir and (why := check_config_dir(request.config_dir)):
        return wire.err(why)
    argv = [POSTSUPER, *(["-c", request.config_dir] if request.config_dir else []), request.flag, "-"]
    try:
        done = subprocess.run(argv, input="".join(f"{i}\n" for i in request.ids).encode(), env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=RUN_SECONDS,
                              cwd="/")
    except FileNotFoundError:
        return wire.err(f"{POSTSUPER} not found (is Postfix installed?)")
    except subprocess.TimeoutExpired:
        return wire.err(f"postsuper {request.flag} did not finish within {RUN_SECONDS}s")
    text = done.stderr[:64 * 1024].decode("utf-8", "replace")
    if done.returncode:
        said = [line for line in text.splitlines() if line.strip()]
        return wire.err(f"postsuper {request.flag} exited {done.returncode}: {said[-1] if said else 'no message'}")
    return wire.ok(wire.done_count(text))


def handle(data: bytes) -> tuple[bytes, str]:
    """One request read whole: check, run. The reply line, and a line for the journal."""
    try:
        request = wire.decode_request(data)
    except wire.ProtocolError as exc:
        reply = wire.err(f"bad request: {exc}")
        return reply, f"refused: {reply.decode().strip()}"
    reply = run(request)
    where = f" -c {request.config_dir}" if request.config_dir else ""
    return reply, f"{request.action} {len(request.ids)} id(s){where}: {reply.decode().strip()}"


def _timeout(_signum: int, _frame: object) -> None:
    os.write(1, wire.err(f"no complete request within {READ_SECONDS}s"))
    os._exit(1)


def main() -> int:
    if os.geteuid() != 0:
        print("mrod postsuper helper: must run as root (postsuper is root's)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(READ_SECONDS)
    data = read_request(0)
    signal.alarm(0)             # postsuper itself is bounded by RUN_SECONDS
    reply, summary = handle(data)
    try:
        os.write(1, reply)
    except OSError:
        pass        # the client left; postsuper's own log says what was done
    print(f"mrod postsuper helper: {summary}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
