"""mrod core: configuration, database, entities and the routing decisions.

Knows nothing of sockets or HTTP; lookupd, admin and the CLI build on it.
"""

__version__ = "0.1.0"
