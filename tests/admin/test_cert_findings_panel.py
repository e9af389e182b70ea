"""Where the certificate findings show (issue 22.3): this host's own findings above the domains on
the DNS checks page, and the certificate a relay's probe saw on the relay's page (escaped: the
names come from a remote server)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from mrod.entities import relays
from mrod.infra import certinfo, db
from mrod.operations import certchecks, health
from mrod.operations.health import HealthMonitor, Probe
from tests.data import SYSTEM


async def test_dns_checks_page_and_relay_page_show_certificates(admin_panel, app_conn, panel_cfg) -> None:
    soon = datetime.now(timezone.utc) + timedelta(days=5)
    findings = certchecks.own_findings("/etc/ssl/mx.pem", certinfo.CertInfo(soon, ("www.example.net",)), "",
                                       ("mx2.example.net",), datetime.now(timezone.utc))
    async with db.transaction(app_conn):
        await app_conn.execute("INSERT INTO host_check (node, status, findings, checked_at) VALUES (?, ?, ?, ?)",
                               (panel_cfg.node.name, "error", json.dumps([asdict(f) for f in findings]),
                                db.now()))
    page = (await admin_panel.get("/dns"))[1]
    assert "<h2>This host</h2>" in page
    assert "error: Postfix&#39;s certificate /etc/ssl/mx.pem covers www.example.net, not this host&#39;s MX name " \
           "mx2.example.net" in page
    assert "warning: Postfix&#39;s certificate /etc/ssl/mx.pem expires on" in page

    relay = await relays.add(app_conn, SYSTEM, name="alpha", host="mx1.example.net", tls="encrypt")
    cert = certinfo.CertInfo(soon.replace(microsecond=0), ("<b>mx1.example.net</b>",))
    await HealthMonitor(panel_cfg).record(app_conn, [({"id": relay.id, "name": relay.name},
                                                      Probe(True, 3.0, True, "220 hi", True, cert, None))])
    [row] = [r for r in await health.status(app_conn) if r["id"] == relay.id]
    assert row["cert_not_after"] == db.stamp(cert.not_after)
    page = (await admin_panel.get(f"/relays/{relay.id}"))[1]
    assert "<dd data-certificate>&lt;b&gt;mx1.example.net&lt;/b&gt;, valid until <time" in page
