"""Finished replies for the common lookups, derived from a RouteSnapshot (issue 23).

``Quick(snap, options, encode).lookup(map, key)`` gives the encoded reply (with its status)
that ``routing.answer`` over the same snapshot would give, or None when the key needs
routing.py itself (odd spellings, relay_recipients, unknown maps). The common lookup is a
dict hit and a shared reply:

* ``relay_domains``/``transport``/bare-domain ``tls_policy`` for a key already in stored form
  (ASCII, lowercase, no trailing dot): the domain's packed int gives its shape, and the reply
  is derived once per shape (``_derive``: a relay edit re-derives every shape, so every domain
  of that relay, in one pass over the few shapes — nothing is kept per domain); replies that
  name the domain (``OK <domain>``, ``relay:<domain>`` for MX routing) are encoded per lookup;
* a key that is no domain: NOTFOUND after looking for a parent only among the domains that
  include subdomains (``snap.wide``, usually empty);
* ``tls_policy`` for a ``[host]:port`` nexthop: routing.py's answer, kept per nexthop until the
  relays or the overrides change (bounded: keys come from clients).

Staleness: every lookup compares the snapshot's version counters (relays, nexthops, shapes)
with the ones the replies were derived from; the journal changes the snapshot itself, so the
next lookup after a committed change sees it as routing.py would.

A bare-domain ``tls_policy`` key whose destination publishes an MTA-STS or DANE policy
(``snap.mta_sts``, mrod.mtasts) goes to routing.py, which weighs it against the domain's own
setting (few domains; tests/core/test_precomputed.py compares both paths with such policies).
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from mrod.answers import routing
from mrod.answers.routing import NOTFOUND, OK
from mrod.answers.snapshot import ID_BITS, RouteSnapshot
from mrod.infra.limits import MAX_DOMAIN_LENGTH

R = TypeVar("R")
Reply = tuple[str, R]   # (status, encoded reply)

NEXTHOPS_KEPT = 4096     # distinct [host]:port keys kept; more (clients' choice): start over


class Quick(Generic[R]):
    def __init__(self, snap: RouteSnapshot, options: routing.Options, encode: Callable[[str, str], R]) -> None:
        self.snap = snap
        self.options = options
        self.encode = encode
        self._notfound: Reply[R] = (NOTFOUND, encode(NOTFOUND, ""))
        self._mx_prefix = f"{options.relay_transport}:"
        # per shape: (enabled, transport reply or None: by MX, bare-domain tls_policy reply)
        self._shapes: list[tuple[bool, Reply[R] | None, Reply[R]]] = []
        self._relays_seen = -1
        self._nexthops: dict[str, Reply[R]] = {}
        self._nexthops_seen = (-1, -1)

    def lookup(self, map_name: str, key: str) -> Reply[R] | None:
        snap = self.snap
        if self._relays_seen != snap.relays_version or len(self._shapes) != len(snap.shapes):
            self._derive()
        if map_name == "transport":
            at = key.rfind("@")
            if at < 0:
                return self._notfound      # routing: '*' and keys without '@' are not found
            name = key[at + 1:]
            found = self._match(name)
            if found is None:
                return self._notfound
            if found == _SLOW:
                return None
            reply = self._shapes[found >> ID_BITS][1]
            if reply is None:
                value = self._mx_prefix + name
                return OK, self.encode(OK, value)
            return reply
        if map_name == "relay_domains":
            if not _stored_form(key):
                return None
            packed = snap.domains.get(key)
            name = key
            if packed is None:
                parent = self._parent(key)
                if parent is None:
                    return self._notfound
                name, packed = parent
            if self._shapes[packed >> ID_BITS][0]:
                return OK, self.encode(OK, name)
            return self._notfound
        if map_name == "tls_policy":
            return self._tls_policy(key)
        return None     # relay_recipients keeps its logic; unknown maps: routing's TEMP

    # -- matching -----------------------------------------------------------------------------

    def _match(self, name: str) -> int | None:
        """The packed int of the domain deciding for ``name``; None: none (NOTFOUND); _SLOW:
        the key is not in stored form (routing.py normalises it)."""
        if not _stored_form(name):
            return _SLOW
        packed = self.snap.domains.get(name)
        if packed is not None:
            return packed
        parent = self._parent(name)
        return None if parent is None else parent[1]

    def _parent(self, name: str) -> tuple[str, int] | None:
        """The closest parent that includes subdomains, as names.deciding_domain picks it
        (parents with at least two labels)."""
        wide = self.snap.wide
        if not wide:
            return None
        dot = name.find(".")
        while dot >= 0:
            parent = name[dot + 1:]
            if "." not in parent:
                return None
            packed = wide.get(parent)
            if packed is not None:
                return parent, packed
            dot = name.find(".", dot + 1)
        return None

    # -- tls_policy ---------------------------------------------------------------------------

    def _tls_policy(self, key: str) -> Reply[R] | None:
        if key.startswith("["):
            return self._nexthop(key)
        if key.startswith("."):
            return self._notfound
        if ":" in key or key in self.snap.mta_sts:
            return None     # a port suffix, or a published MTA-STS/DANE policy: routing.py decides
        packed = self._match(key)
        if packed is None:
            return self._notfound
        return None if packed == _SLOW else self._shapes[packed >> ID_BITS][2]

    def _nexthop(self, key: str) -> Reply[R]:
        snap = self.snap
        seen = (snap.relays_version, snap.nexthops_version)
        if seen != self._nexthops_seen or len(self._nexthops) >= NEXTHOPS_KEPT:
            self._nexthops = {}
            self._nexthops_seen = seen
        reply = self._nexthops.get(key)
        if reply is None:
            answer = routing.tls_policy(snap, key, self.options)
            reply = self._nexthops[key] = (answer.status, self.encode(answer.status, answer.value))
        return reply

    # -- per shape ----------------------------------------------------------------------------

    def _derive(self) -> None:
        """Replies per shape from routing.py's own functions, on a row of that shape."""
        snap = self.snap
        derived = []
        replies: dict[tuple[str, str], Reply[R]] = {}   # one reply object per distinct answer

        def shared(status: str, value: str) -> Reply[R]:
            found = replies.get((status, value))
            if found is None:
                found = replies[(status, value)] = (status, self.encode(status, value))
            return found

        for index, shape in enumerate(snap.shapes):
            row = snap._route("", index << ID_BITS)
            transport = None if row.host is None else shared(OK, routing.route_of(row, "", self.options)[0])
            level = row.tls or "may"
            if row.host is not None or routing.TLS_ORDER.get(level, 0) == 0:
                tls = self._notfound
            else:
                tls = shared(OK, level)
            derived.append((shape[5], transport, tls))
        self._shapes = derived
        self._relays_seen = snap.relays_version


_SLOW = -1     # _match: not in stored form (packed ints are never negative)


def _stored_form(name: str) -> bool:
    """Whether names.lookup_domain(name) is ``name`` itself (so a stored name matches as is):
    ASCII, lowercase, no trailing dot, no address literal, not too long."""
    return (name.isascii() and name.islower() and name[-1] != "." and name[0] != "["
            and len(name) <= MAX_DOMAIN_LENGTH)
