"""Typed keys for what the panel keeps on the application and on each request (the pool's
per-request database connection, CONN, is kept by admin/pool.py, which alone uses it)."""

from __future__ import annotations

from aiohttp import web

from mrod.entities import sessions, throttle, users
from mrod.infra.config import Config

from mrod.admin.pool import Pool

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", Pool)
RULES = web.AppKey("throttle_rules", throttle.Rules)

# Set by the auth middleware: who is asking (None: nobody signed in) and through which session.
USER = web.RequestKey("user", users.User)
SESSION = web.RequestKey("session", sessions.Session)
# Set when the request is an API call authenticated by a bearer token.
API = web.RequestKey("api", bool)
# Set when the signed-in user must use two-factor sign-in and has not set it up.
MUST_ENROL = web.RequestKey("must_enrol", bool)
