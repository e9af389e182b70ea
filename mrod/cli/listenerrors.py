"""A listening socket that cannot be opened, said in one line naming the setting.

``mrod serve`` / ``lookupd`` / ``admin`` bind the endpoints of several settings; asyncio's
OSError names only an address. This maps it back to the setting(s) configured with it; the
serve supervisor, which binds lookupd's sockets itself and knows the setting, says it in the
same words (``sentence``).
"""

from __future__ import annotations

import errno
import re

from mrod.infra import endpoints
from mrod.infra.config import Config

WHY = {
    errno.EADDRINUSE: "already in use (another program, or another mrod, listens there)",
    errno.EACCES: "not allowed (a port below 1024 needs root or CAP_NET_BIND_SERVICE; "
                  "a unix socket needs a writable directory)",
    errno.EADDRNOTAVAIL: "not an address of this host",
    errno.ENOENT: "its directory does not exist",
}
_ADDRESS = re.compile(r"\('([^']*)', (\d+)")


def listen_settings(cfg: Config) -> list[tuple[str, str]]:
    """(setting, endpoint) for every endpoint mrod may listen on."""
    found = [("lookupd.socketmap", cfg.lookupd.socketmap), ("lookupd.policy", cfg.lookupd.policy)]
    found += [(f"lookupd.tcp_table.{name}", ep) for name, ep in cfg.lookupd.tcp_table.items()]
    found += [("admin.listen", cfg.admin.listen), ("metrics.listen", cfg.metrics.listen)]
    return [(key, ep) for key, ep in found if ep]


def explain(exc: OSError, cfg: Config) -> str | None:
    """One line for a bind failure of a configured endpoint; None when it is not one."""
    why = WHY.get(exc.errno or 0)
    if why is None:
        return None
    text = str(exc)
    match = _ADDRESS.search(text)
    keys = []
    for key, ep in listen_settings(cfg):
        parsed = endpoints.parse(ep)
        if parsed.is_unix and parsed.path and parsed.path in text:
            keys.append((key, ep))
        elif match and parsed.port == int(match.group(2)) and parsed.port != 0:
            keys.append((key, ep))
    if not keys:
        return None
    return sentence(" and ".join(k for k, _ in keys), keys[0][1], exc)


def sentence(where: str, endpoint: str, exc: OSError) -> str:
    """The one line for ``where`` (the setting or settings) failing to listen on ``endpoint``."""
    why = WHY.get(exc.errno or 0) or exc.strerror or str(exc)
    return f"{where}: cannot listen on {endpoint}: {why}"
