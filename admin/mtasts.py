"""The MTA-STS page: every destination domain's cached MTA-STS policy and DANE verdict, and
the tls_policy answer lookupd gives for it (mrod.mtasts; the refresh job of mrod serve fills
the cache, `mrod mta-sts refresh` now). ``domains_own`` holders see their own domains only.
/api/v1/mta-sts gives the same as JSON; the domain page shows its own row."""

from __future__ import annotations

from aiohttp import web

from mrod.mtasts import cache

from mrod.admin import pool
from mrod.admin.access import DOMAIN_PERMS, domain_owner_filter
from mrod.admin.auth import needs
from mrod.admin.keys import USER
from mrod.admin.render import render


@needs(*DOMAIN_PERMS)
async def listing(request: web.Request) -> web.StreamResponse:
    rows = await cache.all_cached(await pool.conn(request), owner_id=domain_owner_filter(request[USER]))
    published = [r for r in rows if r.mode is not None or r.dane or r.error]
    return await render(request, "mtasts.html", {"rows": published, "checked": len(rows)})


@needs(*DOMAIN_PERMS)
async def api_listing(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/mta-sts: every checked domain's row."""
    rows = await cache.all_cached(await pool.conn(request), owner_id=domain_owner_filter(request[USER]))
    return web.json_response([r.as_dict() for r in rows])


async def for_domain(request: web.Request, name: str) -> cache.Cached | None:
    """The domain page's row (None: not looked up yet)."""
    return await cache.cached(await pool.conn(request), name)
