"""A URL source: an HTTP(S) export returning JSON or CSV (addresses.py lists the shapes).
A user name in the URL with the password file gives HTTP basic authentication."""

from __future__ import annotations

import ssl
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

from mrod.infra.enums import SourceFormat
from mrod.infra.errors import MrodError
from mrod.recipientsources import addresses
from mrod.recipientsources.sources import Source

MAX_BYTES = 64 * 1024 * 1024


async def fetch(source: Source, secret: str | None, timeout: float) -> list[str]:
    parts = urlsplit(source.url)
    auth = None
    if parts.username:
        auth = aiohttp.BasicAuth(unquote(parts.username), secret or "")
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    tls: ssl.SSLContext | bool = True
    if source.ca_file:
        tls = ssl.create_default_context(cafile=source.ca_file)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.get(urlunsplit(parts), auth=auth, ssl=tls, allow_redirects=False) as response:
            if response.status != 200:
                raise MrodError(f"HTTP {response.status} {response.reason or ''}".strip())
            body = await response.content.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise MrodError(f"the answer is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    if source.format == SourceFormat.CSV:
        return addresses.from_csv(body)
    return addresses.from_json(body)
