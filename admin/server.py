"""The panel as a component of ``mrod serve`` / ``mrod admin``: an aiohttp AppRunner on the
configured endpoint (host:port or unix:/path), HTTPS when [admin] tls_cert/tls_key are set.

On start it creates the first admin (with a random password printed once) when there is no
user at all — there is no default password.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import sys
from pathlib import Path
from typing import TextIO

from aiohttp import web

from mrod.infra import db, endpoints
from mrod.entities import users
from mrod.infra.config import Config
from mrod.infra.errors import ConfigError, DatabaseUnreachable

from mrod.admin.app import create_app

log = logging.getLogger("mrod.admin")


def announce_first_admin(password: str | None, out: TextIO | None = None) -> None:
    """Print the first admin's password, once, to stdout (not the log: logs are kept)."""
    if password is None:
        return
    out = out or sys.stdout
    out.write(f"mrod: created the first panel user 'admin' with the password: {password}\n"
              "mrod: it is shown only this once; sign in and change it under Profile.\n")
    out.flush()


async def create_first_admin(config: Config) -> str | None:
    try:
        async with db.opened(config.database) as conn:   # only `mrod init` creates it
            return await users.ensure_first_admin(conn, config.admin.bcrypt_rounds)
    except DatabaseUnreachable:     # a shared PostgreSQL in an outage: the pool says so (503s)
        return None


def ssl_context(config: Config) -> ssl.SSLContext | None:
    cert, key = config.admin.tls_cert, config.admin.tls_key
    if not cert:            # the loader refuses one without the other: neither is set
        return None
    base = config.base_dir
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(base / Path(cert), base / Path(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"admin.tls_cert / admin.tls_key: {exc}") from None
    return context


def plaintext_beyond_loopback(endpoint: endpoints.Endpoint, context: ssl.SSLContext | None) -> bool:
    """Would passwords, codes and session cookies cross a network in clear text?"""
    if context is not None or endpoint.is_unix:
        return False
    host = (endpoint.host or "").strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True            # not an address we know to be local: assume it reaches beyond


PLAINTEXT_WARNING = ("admin panel listens on %s without TLS: passwords, codes and session cookies cross the "
                     "network in clear text. Set [admin] tls_cert/tls_key, or listen on 127.0.0.1 behind a TLS "
                     "proxy (with trust_proxy = true).")


class AdminServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.runner: web.AppRunner | None = None
        self.site: web.BaseSite | None = None

    async def start(self) -> None:
        context = ssl_context(self.config)   # a bad certificate stops us before any change
        announce_first_admin(await create_first_admin(self.config))
        endpoint = endpoints.parse(self.config.admin.listen)
        self.runner = web.AppRunner(create_app(self.config), access_log=None)
        await self.runner.setup()
        try:
            if endpoint.is_unix:
                assert endpoint.path is not None
                self.site = web.UnixSite(self.runner, endpoint.path, ssl_context=context)
            else:
                self.site = web.TCPSite(self.runner, endpoint.host, endpoint.port, ssl_context=context)
            await self.site.start()
        except OSError:
            await self.runner.cleanup()
            raise
        log.info("admin panel listening on %s://%s", "https" if context else "http", self.address())
        if plaintext_beyond_loopback(endpoint, context):
            log.warning(PLAINTEXT_WARNING, self.address())

    def address(self) -> str:
        """Where it listens (the real port when configured with port 0)."""
        if self.runner is None or not self.runner.addresses:
            return self.config.admin.listen
        first = self.runner.addresses[0]
        if isinstance(first, tuple):
            host, port = first[0], first[1]
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"unix:{first}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
