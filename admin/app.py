"""``create_app(config)``: the one factory for the panel and API — used by ``mrod admin``,
``mrod serve`` and the tests alike."""

from __future__ import annotations

import logging
from typing import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from mrod.entities import throttle
from mrod.infra.config import Config
from mrod.infra.errors import Conflict, DatabaseNotReady, InUse, InvalidInput, MrodError, NotFound

from mrod.admin import auth, pool, render, security
from mrod.admin.keys import CONFIG, POOL, RULES
from mrod.admin.routes import setup_routes

log = logging.getLogger("mrod.admin")
MAX_BODY = 4 * 1024 * 1024      # a bulk add of ~100k domains fits; anything larger is refused


def create_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[
        # pool outermost: a connection an error page borrows is returned too
        pool.middleware, error_middleware, auth.auth_middleware, security.csrf_middleware])
    app[CONFIG] = config
    app[RULES] = throttle.Rules.from_config(config.admin)
    app.cleanup_ctx.append(_database)
    app.on_response_prepare.append(security.set_headers)
    render.setup(app)
    setup_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    database = pool.Pool(app[CONFIG].database)
    await database.open()
    app[POOL] = database
    yield
    await database.close()


# A database that cannot be used (unreachable, no schema) is the server's trouble, not the
# request's: 503, so a proxy or an API client retries instead of taking it as a refusal.
_STATUS = ((NotFound, 404), (InvalidInput, 400), (Conflict, 409), (InUse, 409), (DatabaseNotReady, 503))
TITLES = {400: "Bad request", 401: "Sign-in required", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Too large", 429: "Too many requests",
          500: "Internal error", 503: "Database unavailable"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as pages (or JSON under /api/): a core error becomes its 4xx, a bug a 500 that
    shows nothing of the inside."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, message = exc.status, exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k in ("WWW-Authenticate", "Allow")}
    except MrodError as exc:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 409)
        message, headers = str(exc), {}
        if isinstance(exc, InvalidInput) and request.path.startswith("/api/"):
            return web.json_response({"error": str(exc), "field": exc.field, "status": status}, status=status)
    except Exception:  # the one place a bug becomes a 500 page
        log.exception("error serving %s %s", request.method, request.path)
        status, message, headers = 500, "Something went wrong inside mrod; the log says what.", {}
    if request.path.startswith("/api/"):
        return web.json_response({"error": message, "status": status}, status=status, headers=headers)
    response = await render.render(request, "error.html", {
        "status": status, "title": TITLES.get(status, "Error"), "message": message}, status=status)
    response.headers.update(headers)
    return response
