"""Panel handler tests: the real app (create_app) on a real test server, a temporary
database, users made through mrod.entities.users. ``panel`` signs in like a browser does (cookies,
CSRF token from the page) and keeps the token for later posts."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Callable

import pytest
from aiohttp.test_utils import TestClient

from mrod.admin.app import create_app
from mrod.infra import db
from mrod.entities import users
from tests.data import SYSTEM
from tests.conftest import make_config

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF token on the page"
    return html.unescape(found.group(1))


class Panel:
    """A test client that behaves like a signed-in browser."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    async def login(self, name: str, password: str = PASSWORD, **headers: str) -> Any:
        page = await (await self.client.get("/login")).text()
        response = await self.client.post("/login", data={"name": name, "password": password,
                                                          "csrf_token": csrf_of(page), "next": "/"},
                                          allow_redirects=False, headers=headers)
        if response.status == 303:
            self.csrf = csrf_of(await (await self.client.get("/")).text())
        return response

    async def get(self, path: str, **kw: Any) -> tuple[int, str]:
        response = await self.client.get(path, allow_redirects=False, **kw)
        return response.status, await response.text()

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None, *,
                   csrf: bool = True, **kw: Any) -> tuple[int, str, Any]:
        items = list(data.items()) if isinstance(data, dict) else list(data or [])
        if csrf:
            items.append(("csrf_token", self.csrf))
        response = await self.client.post(path, data=items, allow_redirects=False, **kw)
        return response.status, await response.text(), response


@pytest.fixture
def panel_cfg(tmp_path: Path, database: dict[str, str]):
    return make_config(tmp_path, admin={"bcrypt_rounds": 4, "login_max_failures_user": 3,
                                        "login_max_failures_ip": 5})


@pytest.fixture
async def app_conn(panel_cfg):
    async with db.opened(panel_cfg.database, create=True) as conn:
        yield conn


@pytest.fixture
def make_user(app_conn) -> Callable[..., Any]:
    async def make(name: str, *perms: str, admin: bool = False, password: str = PASSWORD) -> users.User:
        return await users.add(app_conn, SYSTEM, name, password, is_admin=admin, perms=perms, rounds=4)
    return make


@pytest.fixture
async def client(aiohttp_client, panel_cfg, app_conn) -> TestClient:
    return await aiohttp_client(create_app(panel_cfg))


@pytest.fixture
def new_panel(aiohttp_client, panel_cfg, app_conn) -> Callable[..., Any]:
    """A fresh browser (its own cookie jar) on the same app each call."""
    app = create_app(panel_cfg)
    state: dict[str, Any] = {}

    async def make() -> Panel:
        if "server" not in state:
            first = await aiohttp_client(app)
            state["server"] = first.server
            return Panel(first)
        return Panel(await aiohttp_client(state["server"]))
    return make


@pytest.fixture
async def admin_panel(new_panel, make_user) -> Panel:
    await make_user("root", admin=True)
    panel = await new_panel()
    assert (await panel.login("root")).status == 303
    return panel
