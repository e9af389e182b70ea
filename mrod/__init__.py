"""mrod core: configuration, database, entities and the routing decisions.

Knows nothing of sockets or HTTP; lookupd, admin and the CLI build on it.
"""

try:
    # Written at build and install time from pyproject's release and git (packaging/backend/mrod_build.py).
    from mrod._version import __version__ as __version__
except ImportError:     # sources on sys.path that were never built or installed: no version to claim
    __version__ = "0+unknown"
