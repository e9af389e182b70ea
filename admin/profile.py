"""Profile (every signed-in user): change one's own password, see and end one's sessions,
create API tokens (shown once), revoke them, see when each was last used."""

from __future__ import annotations

from aiohttp import web

from mrod.entities import sessions, tokens, totp, users
from mrod.infra.errors import InvalidInput

from mrod.admin import pool
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG, SESSION, USER
from mrod.admin.render import render, text


async def _page(request: web.Request, *, errors: dict[str, str] | None = None, new_token: str | None = None,
                token_name: str = "", status: int = 200) -> web.Response:
    conn = await pool.conn(request)
    user = request[USER]
    return await render(request, "profile.html", {
        "errors": errors or {}, "new_token": new_token, "tokens": await tokens.list_for(conn, user.id),
        "sessions": await sessions.list_for(conn, user.id), "this_session": request[SESSION].id,
        "token_name": token_name, "two_factor": await totp.state(conn, user.id)}, status=status)


@needs()
async def show(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@needs()
async def password(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    conn = await pool.conn(request)
    user = request[USER]
    rounds = request.app[CONFIG].admin.bcrypt_rounds
    current = str(form.get("current", ""))[:1000]
    new, again = str(form.get("password", "")), str(form.get("password2", ""))
    errors: dict[str, str] = {}
    if await users.authenticate(conn, user.name, current, rounds) is None:
        errors["current"] = "this is not your current password"
    try:
        users.password(new)
    except InvalidInput as exc:
        errors["password"] = exc.message
    if new != again:
        errors["password2"] = "the two new passwords differ"
    if errors:      # every field's error at once
        return await _page(request, errors=errors, status=400)
    try:
        # Every other session of this user ends; this one stays signed in.
        await users.set_password(conn, actor(request), user.id, new, rounds=rounds, keep_session=request[SESSION].id)
    except InvalidInput as exc:
        return await _page(request, errors={"password": exc.message}, status=400)
    await flash(request, "success", "Password changed. Your other sessions were signed out.")
    raise web.HTTPSeeOther(request.app.router["profile"].url_for())


@needs()
async def token_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        token, record = await tokens.create(await pool.conn(request), actor(request), request[USER].id,
                                            text(form, "token_name", 200))
    except InvalidInput as exc:
        return await _page(request, errors={"token_name": exc.message}, token_name=text(form, "token_name", 200),
                           status=400)
    # Shown on this response only: it is not stored anywhere and cannot be shown again.
    return await _page(request, new_token=token)


@needs()
async def token_revoke(request: web.Request) -> web.StreamResponse:
    record = await tokens.revoke(await pool.conn(request), actor(request), request[USER].id,
                                 int(request.match_info["id"]))
    await flash(request, "success", f"Token {record.name} revoked.")
    raise web.HTTPSeeOther(request.app.router["profile"].url_for())


@needs()
async def sessions_end(request: web.Request) -> web.StreamResponse:
    ended = await sessions.end_all(await pool.conn(request), request[USER].id, except_id=request[SESSION].id)
    await flash(request, "success", f"{ended} other session(s) signed out.")
    raise web.HTTPSeeOther(request.app.router["profile"].url_for())
