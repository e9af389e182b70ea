"""User pages (permission ``usermgr``): list, add, edit permissions / admin / enabled / the
contact address notifications about their domains go to, set a new password (which ends the
user's sessions), delete."""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.entities import totp
from mrod.entities import users as core
from mrod.infra.errors import Conflict, InvalidInput

from mrod.admin import pool
from mrod.admin.access import check_user_change
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import checked, field_errors, render, text
from mrod.infra import enums
from mrod.infra.enums import Permission

FIELDS = ("name", "password", "permissions", "is_admin", "email")
PERMISSION_HELP: dict[Permission, str] = {
    Permission.USERMGR: "manage users and their permissions",
    Permission.DOMAINS: "see and change every domain",
    Permission.DOMAINS_OWN: "see and change only domains they own",
    Permission.RELAY: "see and change every relay",
    Permission.RELAY_OWN: "see and change only relays they own",
    Permission.LOGS: "read the audit log",
    Permission.BLOCKLIST: "see and lift login blocks",
    Permission.QUEUE: "see and flush the mail queue",
}


@needs(Permission.USERMGR)
async def listing(request: web.Request) -> web.StreamResponse:
    conn = await pool.conn(request)
    return await render(request, "users/list.html", {"users": await core.list_all(conn),
                                                     "two_factor": await totp.enrolled_ids(conn)})


def values_of(user: core.User | None = None, form: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if form is not None:
        return {"name": text(form, "name", 100), "is_admin": checked(form, "is_admin"),
                "enabled": checked(form, "enabled"),
                # A posted form is a MultiDictProxy; the Mapping it is typed as has no getall.
                "permissions": [str(p) for p in form.getall("permissions", [])],  # type: ignore[attr-defined]
                "email": text(form, "email", 400)}
    if user is not None:
        return {"name": user.name, "is_admin": user.is_admin, "enabled": user.enabled,
                "permissions": sorted(user.permissions), "email": user.email or ""}
    return {"name": "", "is_admin": False, "enabled": True, "permissions": [], "email": ""}


async def _form(request: web.Request, values: dict[str, Any], errors: dict[str, str], *,
                target: core.User | None = None, status: int = 200) -> web.Response:
    return await render(request, "users/form.html", {
        "values": values, "errors": errors, "target": target, "permissions": enums.PERMISSIONS,
        "help": PERMISSION_HELP}, status=status)


@needs(Permission.USERMGR)
async def new_form(request: web.Request) -> web.StreamResponse:
    return await _form(request, values_of(), {})


@needs(Permission.USERMGR)
async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = values_of(form=form)
    check_user_change(request[USER], None, makes_admin=values["is_admin"])
    if errors := _input_errors(form, values, new=True):
        return await _form(request, values, errors, status=400)
    try:
        user = await core.add(await pool.conn(request), actor(request), values["name"], str(form.get("password", "")),
                              is_admin=values["is_admin"], perms=values["permissions"], enabled=values["enabled"],
                              rounds=request.app[CONFIG].admin.bcrypt_rounds)
        if values["email"]:         # checked above with the other fields: it cannot be refused now
            user = await core.update(await pool.conn(request), actor(request), user.id, email=values["email"])
    except InvalidInput as exc:
        return await _form(request, values, field_errors(exc, FIELDS), status=400)
    except Conflict as exc:
        return await _form(request, values, {"name": str(exc)}, status=400)
    await flash(request, "success", f"User {user.name} added.")
    raise web.HTTPSeeOther(request.app.router["users"].url_for())


def _input_errors(form: Mapping[str, Any], values: dict[str, Any], *, new: bool) -> dict[str, str]:
    """Every field's error at once: name, password (twice alike), permissions."""
    errors: dict[str, str] = {}
    checks: list[tuple[str, Any]] = [("permissions", lambda: core.permissions(values["permissions"])),
                                     ("email", lambda: core.contact(values["email"]))]
    if new:
        checks.insert(0, ("name", lambda: core.username(values["name"])))
    plain, again = str(form.get("password", "")), str(form.get("password2", ""))
    if new or plain or again:
        checks.append(("password", lambda: core.password(plain)))
    for field, check in checks:
        try:
            check()
        except InvalidInput as exc:
            errors[field] = exc.message
    if (new or plain or again) and plain != again:
        errors["password2"] = "the two passwords differ"
    return errors


async def load(request: web.Request) -> core.User:
    return await core.get(await pool.conn(request), int(request.match_info["id"]))


@needs(Permission.USERMGR)
async def edit_form(request: web.Request) -> web.StreamResponse:
    target = await load(request)
    return await _form(request, values_of(target), {}, target=target)


@needs(Permission.USERMGR)
async def update(request: web.Request) -> web.StreamResponse:
    target = await load(request)
    form = await request.post()
    values = values_of(form=form) | {"name": target.name}
    check_user_change(request[USER], target, makes_admin=values["is_admin"])
    conn = await pool.conn(request)
    new_password = str(form.get("password", ""))
    if errors := _input_errors(form, values, new=False):
        return await _form(request, values, errors, target=target, status=400)
    try:
        target = await core.update(conn, actor(request), target.id, is_admin=values["is_admin"],
                                   enabled=values["enabled"], perms=values["permissions"], email=values["email"])
        if new_password:
            await core.set_password(conn, actor(request), target.id, new_password,
                                    rounds=request.app[CONFIG].admin.bcrypt_rounds)
    except InvalidInput as exc:
        return await _form(request, values, field_errors(exc, FIELDS), target=target, status=400)
    except core.LastAdmin as exc:
        return await _form(request, values, {"is_admin": str(exc)}, target=target, status=409)
    done = " and password changed (the user's sessions ended)" if new_password else ""
    await flash(request, "success", f"User {target.name} saved{done}.")
    raise web.HTTPSeeOther(request.app.router["users"].url_for())


@needs(Permission.USERMGR)
async def delete_form(request: web.Request) -> web.StreamResponse:
    target = await load(request)
    check_user_change(request[USER], target)
    return await render(request, "users/delete.html", {"target": target, "error": None})


@needs(Permission.USERMGR)
async def delete(request: web.Request) -> web.StreamResponse:
    target = await load(request)
    check_user_change(request[USER], target)
    form = await request.post()
    if form.get("confirm") != "yes":
        return await render(request, "users/delete.html", {"target": target, "error": None})
    if target.id == request[USER].id:
        return await render(request, "users/delete.html", {"target": target, "error": "you cannot delete yourself"},
                            status=409)
    try:
        await core.remove(await pool.conn(request), actor(request), target.id)
    except core.LastAdmin as exc:
        return await render(request, "users/delete.html", {"target": target, "error": str(exc)}, status=409)
    await flash(request, "success", f"User {target.name} deleted; the domains and relays they owned have no owner now.")
    raise web.HTTPSeeOther(request.app.router["users"].url_for())
