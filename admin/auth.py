"""Who is asking: the session cookie (panel) or a bearer token (API); sign-in and sign-out;
``needs(...)`` — the permission check every handler carries.
"""

from __future__ import annotations

import functools
import logging
from urllib.parse import urlsplit
from typing import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from mrod.entities import audit, sessions, throttle, tokens, totp, users
from mrod.entities.audit import Actor
from mrod.infra.enums import Permission

from mrod.admin import pool
from mrod.admin.keys import API, CONFIG, MUST_ENROL, RULES, SESSION, USER
from mrod.admin.render import render
from mrod.admin.security import LOGIN_CSRF_COOKIE, client_ip, cookie_secure, login_csrf

log = logging.getLogger("mrod.admin")

COOKIE = "mrod_session"
LOGIN_2FA_COOKIE = "mrod_login_2fa"     # a sign-in waiting for its code (on /login only)
GENERIC_ERROR = "Invalid user name or password."
BLOCKED_ERROR = "Too many failed sign-ins. Try again later, or ask an administrator to lift the block."


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/static/"):
        return await handler(request)
    if request.path.startswith("/api/"):
        # Bearer tokens only: a cookie never authenticates an API call (so the API needs no CSRF).
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            user = await tokens.authenticate(await pool.conn(request), credential.strip(), client_ip(request))
            if user is not None:
                request[USER] = user
                request[API] = True
        return await handler(request)
    token = request.cookies.get(COOKIE)
    if token:
        conn = await pool.conn(request)
        session = await sessions.lookup(conn, token)
        if session is not None:
            request[SESSION] = session
            user = request[USER] = await users.get(conn, session.user_id)
            mode = request.app[CONFIG].admin.two_factor_required
            if totp.required(mode, user) and not await totp.enabled(conn, user.id):
                request[MUST_ENROL] = True
    return await handler(request)


def actor(request: web.Request) -> Actor:
    """The audit trail's "who": the signed-in user, through the panel or the API, from where."""
    user = request[USER]
    return Actor(name=user.name, origin="api" if request.get(API) else "panel", remote=client_ip(request),
                 user_id=user.id)


def needs(*permissions: Permission, enrolling: bool = False) -> Callable[[Handler], Handler]:
    """Signed in, and (when permissions are named) holding at least one of them. A user who
    must use two-factor sign-in but has not set it up reaches only ``enrolling`` pages."""
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = request.get(USER)
            if user is None:
                if request.path.startswith("/api/"):
                    raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="mrod"'},
                                               text="a valid API token is required (Authorization: Bearer ...)")
                raise web.HTTPSeeOther(request.app.router["login"].url_for().with_query(next=request.path_qs))
            if request.get(MUST_ENROL) and not enrolling:
                raise web.HTTPSeeOther(request.app.router["two_factor"].url_for())
            if permissions and not any(user.has(p) for p in permissions):
                raise web.HTTPForbidden(text=f"this needs the permission {' or '.join(permissions)}")
            return await handler(request)
        guarded.needs = permissions  # type: ignore[attr-defined]
        return guarded
    return wrap


def require(request: web.Request, allowed: bool, why: str = "you may not do this") -> None:
    """An object-level check inside a handler (e.g. a domains_own user and someone else's domain)."""
    if not allowed:
        raise web.HTTPForbidden(text=why)


async def flash(request: web.Request, category: str, message: str) -> None:
    session = request.get(SESSION)
    if session is not None:
        await sessions.flash(await pool.conn(request), session.id, category, message)


def safe_next(target: str) -> str:
    """Where to go after sign-in: a path on this site, judged by parsing the target (never
    //host, a scheme, a backslash, or any control or space character — browsers drop TAB/CR/LF
    from URLs, which turns ``/<TAB>/evil.example/`` into ``//evil.example/``)."""
    fallback = "/"
    if not target or len(target) > 2000 or any(ch.isspace() or ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f
                                               or ch == "\\" for ch in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return fallback
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def audit_sign_in(request: web.Request, action: str, name: str, **detail: str) -> None:
    """A sign-in event in the audit log (what: sign_in; key and who: the user name typed —
    for a failure nobody is known to be asking, only what they typed, from where)."""
    typed = name.strip()[:throttle.MAX_USERNAME] or "(empty)"
    await audit.record(await pool.conn(request), Actor(name=typed, origin="panel", remote=client_ip(request)),
                       action, "sign_in", typed, None, detail or None)


async def login_page(request: web.Request, *, error: str | None = None, name: str = "", status: int = 200,
                      notice: str | None = None) -> web.Response:
    token = login_csrf(request)
    response = await render(request, "login.html", {
        "error": error, "name": name, "notice": notice, "login_csrf": token,
        "next": safe_next(request.query.get("next", "/")),
    }, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                        secure=cookie_secure(request))
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(USER) is not None:
        raise web.HTTPSeeOther("/")
    notice = "You are signed out." if request.query.get("bye") else None
    return await login_page(request, notice=notice)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", ""))[:200]
    password = str(form.get("password", ""))[:1000]
    target = safe_next(str(form.get("next", "/")))
    conn = await pool.conn(request)
    remote = client_ip(request)
    if await throttle.blocked(conn, remote, name):
        log.warning("panel sign-in refused (throttled): address=%s user=%r", remote, name)  # fail2ban: contrib/
        await audit_sign_in(request, "refused", name, reason="blocked by the sign-in throttle")
        return await login_page(request, error=BLOCKED_ERROR, name=name, status=429)
    cfg = request.app[CONFIG].admin
    user = await users.authenticate(conn, name, password, cfg.bcrypt_rounds) if name and password else None
    if user is None:
        log.warning("panel sign-in failed: address=%s user=%r", remote, name)  # fail2ban: contrib/fail2ban
        await audit_sign_in(request, "failed", name, step="password")
        blocks = await throttle.failed(conn, request.app[RULES], remote, name)
        for block in blocks:
            log.warning("login throttle: %s %s blocked until %s", block.kind, block.value, block.until)
        return await login_page(request, error=BLOCKED_ERROR if blocks else GENERIC_ERROR, name=name,
                           status=429 if blocks else 401)
    if await totp.enabled(conn, user.id):
        # The password was right; the sign-in finishes at the code step (its own throttle).
        await audit_sign_in(request, "password-ok", user.name, next_step="two-factor code")
        token = await totp.begin_login(conn, user.id, remote, target)
        response = web.HTTPSeeOther(request.app.router["login_code"].url_for())
        response.set_cookie(LOGIN_2FA_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                            secure=cookie_secure(request), max_age=totp.PENDING_MINUTES * 60)
        raise response
    raise await finish_sign_in(request, user, target)


async def finish_sign_in(request: web.Request, user: users.User, target: str,
                         how: str = "password") -> web.HTTPSeeOther:
    """Every factor checked: a new session; returns the redirect to where the user was going."""
    conn = await pool.conn(request)
    remote = client_ip(request)
    cfg = request.app[CONFIG].admin
    await throttle.succeeded(conn, remote, user.name)
    await sessions.purge_expired(conn)       # sign-ins are rare: a good moment to tidy up
    old = request.get(SESSION)
    if old is not None:       # never keep a session across sign-ins (fixation)
        await sessions.end(conn, old.id)
    token, _session = await sessions.create(conn, user.id, cfg.session_hours, remote=remote,
                                            user_agent=request.headers.get("User-Agent"))
    await audit_sign_in(request, "signed-in", user.name, factors=how)
    log.info("%s signed in from %s (%s)", user.name, remote, how)
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=cookie_secure(request), max_age=int(cfg.session_hours * 3600))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    response.del_cookie(LOGIN_2FA_COOKIE, path="/login")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is not None:
        await sessions.end(await pool.conn(request), session.id)
        await audit_sign_in(request, "signed-out", request[USER].name)
    response = web.HTTPSeeOther(request.app.router["login"].url_for().with_query(bye="1"))
    response.del_cookie(COOKIE, path="/")
    raise response
