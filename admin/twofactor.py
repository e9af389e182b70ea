"""Two-factor sign-in in the panel: the code step of signing in, and each user's own set-up
(QR code drawn here as SVG — no outside service sees the secret), confirmation, recovery
codes shown once, and switching it off with password and code. See mrod.entities.totp."""

from __future__ import annotations

import segno
from aiohttp import web

from mrod.entities import throttle, totp, users
from mrod.infra.errors import InvalidInput

from mrod.admin import pool
from mrod.admin.auth import (BLOCKED_ERROR, LOGIN_2FA_COOKIE, actor, audit_sign_in, finish_sign_in, flash, log,
                             login_page, needs)
from mrod.admin.keys import CONFIG, MUST_ENROL, RULES, USER
from mrod.admin.render import render, text
from mrod.admin.security import LOGIN_CSRF_COOKIE, client_ip, cookie_secure, login_csrf

WRONG_CODE = "That code is not right. Type the 6 digits your app shows now, or an unused recovery code."
USED_CODE = ("That code was already used: each code signs in once. Wait for the next code your app shows,"
             " or type an unused recovery code.")
EXPIRED = "The sign-in took too long or had too many wrong codes; give your password again."


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as a QR code in an SVG data: URI (the CSP allows img-src data:)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")


def grouped(secret: str) -> str:
    """The secret in groups of four, as typed by hand into an app."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


# -- the code step of signing in ------------------------------------------------------------


async def _code_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    token = login_csrf(request)
    response = await render(request, "login_code.html", {"error": error, "login_csrf": token}, status=status)
    # The same double-submit pair as the password form (the cookie is on /login, so here too).
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                        secure=cookie_secure(request))
    return response


async def _pending(request: web.Request) -> totp.PendingLogin | None:
    return await totp.pending_login(await pool.conn(request), request.cookies.get(LOGIN_2FA_COOKIE),
                                    client_ip(request))


def _start_again(request: web.Request) -> web.HTTPSeeOther:
    response = web.HTTPSeeOther(request.app.router["login"].url_for())
    response.del_cookie(LOGIN_2FA_COOKIE, path="/login")
    return response


async def code_form(request: web.Request) -> web.StreamResponse:
    if await _pending(request) is None:
        raise _start_again(request)
    return await _code_page(request)


async def code(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    conn = await pool.conn(request)
    pending = await _pending(request)
    if pending is None:
        return await login_page(request, error=EXPIRED, status=401)
    user = await users.get(conn, pending.user_id)
    remote = client_ip(request)
    if not user.enabled:      # disabled between the two steps
        await totp.end_login(conn, pending)
        log.warning("panel sign-in failed: address=%s user=%r", remote, user.name)  # fail2ban: contrib/fail2ban
        await audit_sign_in(request, "failed", user.name, step="two-factor code", reason="user disabled")
        return await login_page(request, error=EXPIRED, status=401)
    if await throttle.blocked(conn, remote, user.name):
        await totp.end_login(conn, pending)
        log.warning("panel sign-in refused (throttled): address=%s user=%r", remote, user.name)  # fail2ban: contrib/
        await audit_sign_in(request, "refused", user.name, reason="blocked by the sign-in throttle")
        return await login_page(request, error=BLOCKED_ERROR, name=user.name, status=429)
    typed = text(form, "code", 64)
    how = await totp.check(conn, user.id, typed)
    if how is None:
        # The same line as a wrong password: fail2ban bans code guessers too.
        log.warning("panel sign-in failed: address=%s user=%r", remote, user.name)  # fail2ban: contrib/fail2ban
        used = await totp.already_used(conn, user.id, typed)
        await audit_sign_in(request, "failed", user.name, step="two-factor code",
                            **({"reason": "code already used"} if used else {}))
        blocks = await throttle.failed(conn, request.app[RULES], remote, user.name)
        used_up = await totp.login_failed(conn, pending)
        if blocks or used_up:
            await totp.end_login(conn, pending)        # the password must be given again
            for block in blocks:
                log.warning("login throttle: %s %s blocked until %s", block.kind, block.value, block.until)
            return await login_page(request, error=BLOCKED_ERROR if blocks else EXPIRED, name=user.name,
                                    status=429 if blocks else 401)
        return await _code_page(request, error=USED_CODE if used else WRONG_CODE, status=401)
    await totp.end_login(conn, pending)
    raise await finish_sign_in(request, user, pending.next, how=f"password + {'TOTP code' if how == 'code' else how}")


# -- a user's own set-up ---------------------------------------------------------------------


async def _page(request: web.Request, *, errors: dict[str, str] | None = None, codes: list[str] | None = None,
                status: int = 200) -> web.Response:
    conn = await pool.conn(request)
    user = request[USER]
    state = await totp.state(conn, user.id)
    context = {"state": state, "errors": errors or {}, "codes": codes, "must": bool(request.get(MUST_ENROL)),
               "secret": None, "qr": None,
               "required": totp.required(request.app[CONFIG].admin.two_factor_required, user)}
    if not state.enabled:
        secret = await totp.pending_secret(conn, user.id)
        context["secret"] = grouped(secret)
        context["qr"] = qr_data_uri(totp.provisioning_uri(secret, user.name))
    return await render(request, "twofactor.html", context, status=status)


@needs(enrolling=True)
async def show(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@needs(enrolling=True)
async def confirm(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    conn = await pool.conn(request)
    if await totp.enabled(conn, request[USER].id):
        raise web.HTTPSeeOther(request.app.router["two_factor"].url_for())
    try:
        codes = await totp.confirm(conn, actor(request), request[USER].id, text(form, "code", 64))
    except InvalidInput as exc:
        return await _page(request, errors={"code": exc.message}, status=400)
    request[MUST_ENROL] = False
    # The recovery codes are on this response only: stored hashed, they cannot be shown again.
    return await _page(request, codes=codes)


@needs()
async def disable(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    conn = await pool.conn(request)
    user = request[USER]
    remote = client_ip(request)
    if await throttle.blocked(conn, remote, user.name):
        return await _page(request, errors={"current": BLOCKED_ERROR}, status=429)
    errors: dict[str, str] = {}
    current = str(form.get("current", ""))[:1000]
    if await users.authenticate(conn, user.name, current, request.app[CONFIG].admin.bcrypt_rounds) is None:
        errors["current"] = "this is not your current password"
    # The code is checked only after the password, so a wrong password does not use a code up.
    elif await totp.check(conn, user.id, typed := text(form, "code", 64)) is None:
        errors["code"] = ("that code was already used; wait for the next one the app shows"
                          if await totp.already_used(conn, user.id, typed)
                          else "that code does not match (6 digits from the app, or an unused recovery code)")
    if errors:
        await throttle.failed(conn, request.app[RULES], remote, user.name)
        return await _page(request, errors=errors, status=400)
    await totp.disable(conn, actor(request), user.id)
    await flash(request, "success", "Two-factor sign-in is off. Your app's entry for mrod can be deleted.")
    raise web.HTTPSeeOther(request.app.router["profile"].url_for())
