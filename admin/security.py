"""Security headers on every response, the CSRF check on every state-changing panel request,
and what the panel believes about a request's origin (HTTPS? which client address?).

The CSP allows no inline script or style: every script and stylesheet is a file in static/.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from mrod.admin.keys import CONFIG, SESSION

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_CSRF_COOKIE = "mrod_login_csrf"


def is_secure(request: web.Request) -> bool:
    """Did the browser reach us over HTTPS (directly, or through a trusted TLS proxy)?"""
    if request.secure:
        return True
    if request.app[CONFIG].admin.trust_proxy:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def cookie_secure(request: web.Request) -> bool:
    mode = request.app[CONFIG].admin.cookie_secure
    return mode == "always" or (mode == "auto" and is_secure(request))


def client_ip(request: web.Request) -> str:
    """The peer address; behind a trusted proxy, the address that proxy saw (the last
    X-Forwarded-For entry: the one our proxy appended, not one a client made up)."""
    if request.app[CONFIG].admin.trust_proxy:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return (request.remote or "unknown")[:64]


async def set_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, pages, JSON, static files and errors alike."""
    headers = response.headers
    headers["Server"] = "mrod"      # not aiohttp's "Python/3.x aiohttp/3.y": no versions to look up
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    if is_secure(request):
        headers["Strict-Transport-Security"] = "max-age=31536000"


def _same_origin(request: web.Request) -> bool:
    """A browser says where a form came from; refuse other sites (defence in depth)."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


def forbidden_csrf() -> web.HTTPForbidden:
    return web.HTTPForbidden(text="The form has expired or did not come from this panel (CSRF check failed). "
                                  "Go back, reload the page and try again.")


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The API authenticates with bearer tokens, never cookies, so it needs no CSRF token.
    if request.method in UNSAFE and not request.path.startswith("/api/"):
        if not _same_origin(request):
            raise forbidden_csrf()
        form = await request.post() if request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data") else {}
        sent = str(form.get(CSRF_FIELD, "") or request.headers.get(CSRF_HEADER, ""))
        session = request.get(SESSION)
        if request.path in ("/login", "/login/code"):
            # Before sign-in: double submit (a cookie and the form must agree).
            expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        else:
            expected = session.csrf_token if session is not None else ""
        if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise forbidden_csrf()
    return await handler(request)


def login_csrf(request: web.Request) -> str:
    """The pre-session CSRF token for the sign-in form (reuse the cookie's when present)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return token if 20 <= len(token) <= 100 else secrets.token_urlsafe(24)
