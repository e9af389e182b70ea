"""The event loop lookupd and the policy service run on: uvloop when it is installed (its
transports cost less per request: BENCHMARKS.md), else the standard library's."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

log = logging.getLogger("mrod.lookupd")


def name() -> str:
    """'uvloop' or 'asyncio': the loop ``run`` uses."""
    try:
        import uvloop  # noqa: F401 - imported only to learn whether it is installed
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, Any]) -> Any:
    if name() == "uvloop":
        import uvloop

        log.debug("event loop: uvloop")
        return uvloop.run(main)
    return asyncio.run(main)
