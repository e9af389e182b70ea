"""Postfix-facing daemons: socketmap and tcp_table lookups (and the policy service).

codecs (socketmap, tcptable) are pure: bytes in -> requests, answers -> bytes, no I/O.
service answers one (map, key) over mrod.answers.routing; servers are thin asyncio listeners.
"""
