"""The Trust kit page and GET /api/v1/trust-kit: what the primary's filters need to trust this
cluster's backup MX nodes, in each format (mrod.operations.trustkit, the same text as `mrod
trust-kit --format F`). The permission ``relay``: whoever manages the primaries."""

from __future__ import annotations

from aiohttp import web

from mrod.infra.enums import TRUST_KIT_FORMATS, Permission
from mrod.operations import trustkit

from mrod.admin import pool
from mrod.admin.auth import needs
from mrod.admin.keys import CONFIG
from mrod.admin.render import render


async def _kit(request: web.Request, fmt: str) -> tuple[str, list[trustkit.NodeAddresses]]:
    nodes = await trustkit.for_cluster(await pool.conn(request), request.app[CONFIG])
    return trustkit.render(fmt, nodes), nodes


@needs(Permission.RELAY)
async def page(request: web.Request) -> web.StreamResponse:
    fmt = request.query.get("format", TRUST_KIT_FORMATS[0])
    if fmt not in TRUST_KIT_FORMATS:
        fmt = TRUST_KIT_FORMATS[0]
    text, nodes = await _kit(request, fmt)
    return await render(request, "trustkit.html", {"formats": TRUST_KIT_FORMATS, "format": fmt, "text": text,
                                                   "nodes": nodes})


@needs(Permission.RELAY)
async def api_kit(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/trust-kit?format=rspamd: the kit as text, and every node's addresses."""
    fmt = request.query.get("format", TRUST_KIT_FORMATS[0])
    text, nodes = await _kit(request, fmt)     # an unknown format: InvalidInput, a 400
    return web.json_response({"format": fmt, "text": text,
                              "nodes": [{"node": n.node, "public_addresses": list(n.addresses)} for n in nodes]})
