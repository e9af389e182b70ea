"""Read every address a source holds: the one entry point of the sync (``fetch``).

LDAP and SQL clients block, so they run in a thread (asyncio.to_thread), never on the loop
that serves the panel; the URL source is read with aiohttp. Every step has a timeout. A
failure raises FetchFailed with a message fit for the operator, without the password.
"""

from __future__ import annotations

import asyncio

from mrod.infra import foreignsql
from mrod.infra.enums import SourceKind
from mrod.infra.errors import MrodError
from mrod.recipientsources import addresses, fetchldap, fetchurl
from mrod.recipientsources.sources import Source


class FetchFailed(MrodError):
    """Reading the source failed; the last applied list stays."""


def password(source: Source) -> str | None:
    """The first line of the source's password file (never logged)."""
    if not source.password_file:
        return None
    try:
        with open(source.password_file, encoding="utf-8") as fh:
            return fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise FetchFailed(f"password_file {source.password_file} cannot be read: {exc.strerror}") from None


async def fetch(source: Source, timeout: float) -> list[str]:
    """Every value the source returned (not yet checked as addresses)."""
    secret = password(source)
    try:
        if source.kind == SourceKind.URL:
            return await asyncio.wait_for(fetchurl.fetch(source, secret, timeout), timeout * 2)
        reader = fetchldap.fetch if source.kind == SourceKind.LDAP else _sql
        # The thread itself cannot be cancelled; its clients carry their own timeouts, this
        # one bounds the wait of the sync.
        return await asyncio.wait_for(asyncio.to_thread(reader, source, secret, timeout), timeout * 2)
    except asyncio.TimeoutError:
        raise FetchFailed(f"no answer within {timeout * 2:g}s") from None
    except (addresses.BadAnswer, FetchFailed):
        raise
    except MrodError as exc:
        raise FetchFailed(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any client error (3 libraries' trees) marks the source failing
        text = " ".join(str(exc).split()) or type(exc).__name__
        if secret:
            text = text.replace(secret, "***")
        raise FetchFailed(f"{type(exc).__name__}: {text}"[:500]) from None


def _sql(source: Source, secret: str | None, timeout: float) -> list[str]:
    return addresses.as_text(foreignsql.first_column(source.url, source.query or "", secret, timeout))
