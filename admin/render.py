"""Rendering pages: the Jinja2 environment (autoescape on: every value is escaped unless a
template says otherwise, and none does), what every page knows (user, CSRF token, flashes,
navigation), and form helpers that turn core InvalidInput errors into messages beside fields.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

import aiohttp_jinja2
import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from mrod.infra import durations, names
from mrod.entities import sessions
from mrod.infra.enums import Permission
from mrod.infra.errors import InvalidInput

from mrod.admin import pool, words
from mrod.admin.keys import SESSION, USER

TEMPLATES = Path(__file__).parent / "templates"

# (route name, label, any of these permissions; () = every signed-in user)
NAV: list[tuple[str, str, tuple[Permission, ...]]] = [
    ("dashboard", "Dashboard", ()),
    ("domains", "Domains", (Permission.DOMAINS, Permission.DOMAINS_OWN)),
    ("relays", "Relays", (Permission.RELAY, Permission.RELAY_OWN)),
    ("recipient_sources", "Recipient sources", ()),     # administrators only (ADMINS_ONLY)
    ("users", "Users", (Permission.USERMGR,)),
    ("logs", "Audit log", (Permission.LOGS,)),
    ("blocklist", "Blocklist", (Permission.BLOCKLIST,)),
    ("bind_import", "BIND import", (Permission.DOMAINS,)),
    ("dns_checks", "DNS checks", (Permission.DOMAINS, Permission.DOMAINS_OWN)),
    ("queue", "Queue", (Permission.QUEUE,)),
    ("trust_kit", "Trust kit", (Permission.RELAY,)),
    ("notifications", "Notifications", (Permission.LOGS,)),
    ("profile", "Profile", ()),
]
# Pages for administrators only (a recipient source reads a password file on this host).
ADMINS_ONLY = frozenset({"recipient_sources"})


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                               undefined=jinja2.StrictUndefined)
    env.filters["unicode"] = names.to_unicode
    env.filters["combine"] = combine
    env.filters["lifetime"] = durations.duration_text
    env.filters["zip_self"] = lambda items: [(str(i), str(i)) for i in items]
    env.filters["owner_option"] = lambda user: (str(user.id), user.name)
    env.filters["when"] = words.when
    env.filters["duration"] = words.duration
    env.filters["plain"] = words.plain
    env.filters["label"] = words.label
    env.filters["cut"] = words.cut
    env.filters["breakable"] = words.breakable
    env.globals["pages"] = pages


async def render(request: web.Request, template: str, context: Mapping[str, Any], *,
                 status: int = 200) -> web.Response:
    """A page, with what every page knows. Flashes are taken here, only when a page is shown."""
    user = request.get(USER)
    session = request.get(SESSION)
    flashes: list[tuple[str, str]] = []
    if session is not None:
        flashes = await sessions.take_flashes(await pool.conn(request), session.id)
    nav = [(name, label) for name, label, perms in NAV
           if user is not None and (user.is_admin if name in ADMINS_ONLY else
                                    (not perms or any(user.has(p) for p in perms)))]
    base = {"request": request, "user": user, "csrf_token": session.csrf_token if session else "",
            "flashes": flashes, "nav": nav}
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def field_errors(exc: InvalidInput, known: tuple[str, ...], fallback: str = "_form") -> dict[str, str]:
    """{form field: message}; an error about a field the form does not show goes on top."""
    key = exc.field if exc.field in known else fallback
    return {key: exc.message if key != fallback or exc.field in ("", fallback) else str(exc)}


def all_field_errors(validate: Callable[[Mapping[str, Any]], Any], fields: Mapping[str, Any],
                     known: tuple[str, ...]) -> dict[str, str]:
    """Every field's error at once (a core validator stops at the first): each field is
    validated on its own."""
    errors: dict[str, str] = {}
    for key, value in fields.items():
        try:
            validate({key: value})
        except InvalidInput as exc:
            for field, message in field_errors(exc, known).items():
                errors.setdefault(field, message)
    return errors


def text(form: MultiDictProxy[str | bytes | web.FileField] | Mapping[str, Any], key: str, limit: int = 1000) -> str:
    value = form.get(key, "")
    return str(value).strip()[:limit] if isinstance(value, str) else ""


def checked(form: MultiDictProxy[str | bytes | web.FileField] | Mapping[str, Any], key: str) -> bool:
    return form.get(key) in ("1", "on", "yes", "true")


def int_arg(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        number = int(value) if value not in (None, "") else default
    except ValueError:
        return default
    return max(lo, min(hi, number))


def pages(total: int, page: int, per_page: int) -> dict[str, int]:
    count = max(1, math.ceil(total / per_page))
    return {"page": min(page, count), "count": count, "total": total, "per_page": per_page}


def combine(query: Mapping[str, Any], **changes: Any) -> dict[str, str]:
    """A query string with some values changed (for sort and page links)."""
    return {**{k: str(v) for k, v in query.items()}, **{k: str(v) for k, v in changes.items()}}
