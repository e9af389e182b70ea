"""GET /api/v1/trust-kit (issue 20.4): the same text as `mrod trust-kit`, every node's addresses,
a 400 for an unknown format, and the permission relay."""

from __future__ import annotations

from mrod.operations import nodereports
from tests.admin.test_api import _token


async def test_the_api_gives_the_kit_of_every_node(admin_panel, app_conn, new_panel, make_user) -> None:
    await nodereports.upsert(app_conn, "mx-b", None, False, public_addresses=("198.51.100.0/28",))
    token = await _token(admin_panel)
    client = admin_panel.client
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.get("/api/v1/trust-kit?format=spamassassin", headers=headers)
    assert response.status == 200
    body = await response.json()
    assert body["format"] == "spamassassin"
    assert "trusted_networks 198.51.100.0/28" in body["text"].splitlines()
    nodes = {n["node"]: n["public_addresses"] for n in body["nodes"]}
    assert nodes["mx-b"] == ["198.51.100.0/28"] and len(nodes) == 2        # and this node: none set
    response = await client.get("/api/v1/trust-kit?format=exim", headers=headers)
    assert response.status == 400 and "unknown trust kit format 'exim'" in (await response.json())["error"]
    response = await client.get("/api/v1/trust-kit", headers=headers)      # no format: rspamd's
    assert response.status == 200 and (await response.json())["format"] == "rspamd"
    # Without the permission relay: refused, on the page and in the API.
    await make_user("viewer", "domains")
    viewer = await new_panel()
    await viewer.login("viewer")
    assert (await viewer.get("/trust-kit"))[0] == 403
