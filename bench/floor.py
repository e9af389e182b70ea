"""The floor: a socketmap server that does no lookup at all — it answers ``NOTFOUND `` to every
request, straight from ``asyncio.Protocol.data_received``. No Python socketmap daemon can be
faster than this on the same machine; what lookupd costs above it is its own work (decoding,
limits, routing, SQLite). Its answers are not checked (they are wrong on purpose).

    .venv/bin/python -m bench.floor --listen 127.0.0.1:PORT | unix:/path [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import cast

REPLY = b"9:NOTFOUND ,"


class FloorProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's are no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        # Postfix sends one request and waits for its reply: one reply per read is enough
        # here (a read never holds two requests from dict_sockmap).
        self.transport.write(REPLY)


async def serve(listen: str) -> None:
    loop = asyncio.get_running_loop()
    if listen.startswith("unix:"):
        path = listen[5:]
        if os.path.exists(path):
            os.unlink(path)
        server = await loop.create_unix_server(FloorProtocol, path)
    else:
        host, _, port = listen.rpartition(":")
        server = await loop.create_server(FloorProtocol, host, int(port))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (as lookupd does when installed)")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.listen))
    else:
        asyncio.run(serve(args.listen))


if __name__ == "__main__":
    main()
