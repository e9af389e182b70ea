"""Listening sockets that outlive a lookupd process, so a restart never refuses Postfix.

Two ways in, both read once at start by ``inherited()``:
* systemd socket activation (``mrod.socket``): LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES;
  systemd keeps the sockets open across ``systemctl restart mrod`` and connections wait in
  the backlog until the new process accepts them;
* ``mrod serve``'s supervisor (``MROD_LISTEN_FDS="name=fd,…"``): it binds the sockets once and
  hands them to each lookupd child, old and new overlapping during a graceful restart.

A listener takes the socket named after it (``socketmap``, ``policy``, ``tcp_table.MAP``) or,
failing that, the one bound to its configured address.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import stat
from typing import Mapping, MutableMapping

from mrod.infra import endpoints

log = logging.getLogger("mrod.lookupd")

SD_LISTEN_FDS_START = 3
OWN_VARIABLE = "MROD_LISTEN_FDS"


def inherited(environ: MutableMapping[str, str] = os.environ) -> list[tuple[str, socket.socket]]:
    """(name, socket) of every listening socket handed to this process; the variables are
    removed so that processes this one starts do not take them for theirs."""
    own = environ.pop(OWN_VARIABLE, "")
    if own:
        found = []
        for item in own.split(","):
            name, _, number = item.rpartition("=")
            found.append((name, socket.socket(fileno=int(number))))
        return found
    pid, count = environ.pop("LISTEN_PID", ""), environ.pop("LISTEN_FDS", "")
    names = environ.pop("LISTEN_FDNAMES", "").split(":")
    if pid != str(os.getpid()) or not count.isdigit():
        return []
    found = []
    for i in range(int(count)):
        fd = SD_LISTEN_FDS_START + i
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            log.warning("systemd passed fd %d, which is not a socket: ignored", fd)
            continue
        os.set_inheritable(fd, False)
        found.append((names[i] if i < len(names) else "", socket.socket(fileno=fd)))
    return found


def key(listener_name: str) -> str:
    """The fd name of a listener: 'tcp_table relay_domains' -> 'tcp_table.relay_domains'."""
    return listener_name.replace(" ", ".")


def pick(listener_name: str, endpoint: endpoints.Endpoint,
         available: list[tuple[str, socket.socket]]) -> socket.socket | None:
    """Take (remove from ``available``) the socket for this listener, by name, else by address."""
    wanted = key(listener_name)
    for i, (name, _sock) in enumerate(available):
        if name == wanted:
            return available.pop(i)[1]
    for i, (_name, sock) in enumerate(available):
        if bound_to(sock, endpoint):
            return available.pop(i)[1]
    return None


def bound_to(sock: socket.socket, ep: endpoints.Endpoint) -> bool:
    try:
        address = sock.getsockname()
    except OSError:
        return False
    if ep.is_unix:
        return sock.family == socket.AF_UNIX and address == ep.path
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or address[1] != ep.port:
        return False
    try:
        return ipaddress.ip_address(address[0]) == ipaddress.ip_address(ep.host or "")
    except ValueError:
        return True   # a host name in the config: the port decides


def bind(ep: endpoints.Endpoint, backlog: int = 1024) -> socket.socket:
    """A listening socket for the endpoint (what the supervisor holds for its children)."""
    if ep.is_unix:
        assert ep.path is not None
        try:
            if stat.S_ISSOCK(os.stat(ep.path).st_mode):
                os.unlink(ep.path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(ep.path)
        os.chmod(ep.path, 0o666)   # Postfix's daemons run as the postfix user
    else:
        info = socket.getaddrinfo(ep.host, ep.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if info[0] == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(info[4])
    sock.listen(backlog)
    return sock


def describe(handed: Mapping[str, socket.socket]) -> str:
    """The MROD_LISTEN_FDS value for these sockets."""
    return ",".join(f"{name}={sock.fileno()}" for name, sock in handed.items())
