"""Who may see and change what — one set of rules for panel pages and API endpoints alike.

* ``domains``: every domain. ``domains_own``: only domains the user owns; what they add is
  theirs. Either may route a domain through any relay (relays are shared infrastructure set up
  by whoever holds ``relay``); relay details are shown only to relay holders.
  Queue quotas protect the disk for every domain, so only ``domains`` holders set them.
* ``relay``: every relay. ``relay_own``: only relays the user owns; what they add is theirs.
* ``usermgr``: users and their permissions — but only an admin may create, change or remove
  an admin, or make someone admin (no climbing above one's own rank).
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.entities import domains as domaincore
from mrod.entities.domains import Domain
from mrod.entities.relays import Relay
from mrod.entities.users import User
from mrod.infra.enums import Permission

DOMAIN_PERMS = (Permission.DOMAINS, Permission.DOMAINS_OWN)
RELAY_PERMS = (Permission.RELAY, Permission.RELAY_OWN)
QUOTA_FIELDS = ("quota_messages", "quota_bytes")


def domain_owner_filter(user: User) -> int | None:
    """None: every domain; else only this owner's."""
    return None if user.has(Permission.DOMAINS) else user.id


def can_domain(user: User, domain: Domain) -> bool:
    return user.has(Permission.DOMAINS) or (user.has(Permission.DOMAINS_OWN) and domain.owner_id == user.id)


def check_domain(user: User, domain: Domain) -> None:
    if not can_domain(user, domain):
        raise web.HTTPForbidden(text=f"you may see and change only your own domains; {domain.name} is not yours")


def may_set_quota(user: User) -> bool:
    """A queue quota guards the disk every domain shares: a domains_own user may not lift it."""
    return user.has(Permission.DOMAINS)


def check_quota_change(user: User, spec: Mapping[str, Any]) -> None:
    if not may_set_quota(user) and any(key in spec for key in QUOTA_FIELDS):
        raise web.HTTPForbidden(text="setting a queue quota needs the permission domains "
                                     "(quotas protect the disk every domain shares)")


async def load_domain(request: web.Request, name: str | None = None) -> Domain:
    """The domain named in the URL, if this user may see it (403 otherwise, 404 if absent)."""
    from mrod.admin import pool
    from mrod.admin.keys import USER

    domain = await domaincore.get(await pool.conn(request), name or request.match_info["name"])
    check_domain(request[USER], domain)
    return domain


def relay_owner_filter(user: User) -> int | None:
    return None if user.has(Permission.RELAY) else user.id


def can_relay(user: User, relay: Relay) -> bool:
    return user.has(Permission.RELAY) or (user.has(Permission.RELAY_OWN) and relay.owner_id == user.id)


def check_relay(user: User, relay: Relay) -> None:
    if not can_relay(user, relay):
        raise web.HTTPForbidden(text=f"you may see and change only your own relays; {relay.name} is not yours")


def check_user_change(actor: User, target: User | None, *, makes_admin: bool = False) -> None:
    """A usermgr who is not admin may not touch admins nor create one."""
    if actor.is_admin:
        return
    if (target is not None and target.is_admin) or makes_admin:
        raise web.HTTPForbidden(text="only an admin may create, change or remove an admin")
