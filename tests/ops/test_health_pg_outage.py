"""The health monitor while a shared PostgreSQL is gone (issue 11): it goes on probing from what
it knows (its last round, or after a restart lookupd's snapshot file), flushes a primary that
comes back — its domains found in that snapshot — and stores (and audits) where it got to once
the database is back. Real PostgreSQL, a real lookupd writing its file, an SMTP primary on
loopback; the flush itself is recorded (tests/ops/test_health.py: the real flush is tested
against real Postfix, and tests/postfix/test_cluster.py does it during an outage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrod.entities import audit
from mrod.infra import db
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseUnreachable
from mrod.lookupd.daemon import Lookupd
from mrod.operations import health
from tests.conftest import make_config
from tests.data import seed
from tests.harness import free_port, postgres
from tests.harness.smtpsink import SmtpSink
from tests.ops.test_health import Flushes


async def test_a_primary_back_during_an_outage_is_flushed(tmp_path: Path, private_cluster: postgres.Cluster) -> None:
    server = private_cluster
    target = Target(url=server.url(server.new_database()), password_file=str(server.password_file))
    sink = SmtpSink("primary")          # down until started
    async with db.opened(target) as conn:
        await seed(conn, relays=[dict(name="primary", host="127.0.0.1", port=sink.port),
                                 dict(name="spare", host="127.0.0.1", port=sink.port)],
                   domains=[dict(name="example.com", relay="primary"), dict(name="example.org", relay="primary"),
                            dict(name="other.example", relay="spare")])
    cfg = make_config(tmp_path, database={"url": target.url, "password_file": target.password_file},
                      lookupd={"socketmap": "127.0.0.1:0", "policy": ""},
                      health={"down_after": 2, "up_after": 2, "timeout": 3.0})
    daemon = Lookupd(cfg)          # writes lookupd-snapshot.json in the node's state directory
    await daemon.start()
    await daemon.stop()
    flushes = Flushes()
    monitor = health.HealthMonitor(cfg, flusher=flushes)
    try:
        assert await monitor.run_once() == []                      # one failure, stored
        server.pause()
        # The database gone: the monitor goes on from memory; down, then back up, flushed.
        [down, _] = await monitor.run_once()
        assert (down.before, down.after) == ("unknown", "down")
        sink.start()
        assert await monitor.run_once() == []                      # one success: still down
        transitions = await monitor.run_once()
        assert sorted((t.relay, t.after) for t in transitions) == [("primary", "up"), ("spare", "up")]
        by_name = {name: did for did, name in flushes.calls[0].items()}
        assert flushes.calls == [{by_name["example.com"]: "example.com", by_name["example.org"]: "example.org",
                                  by_name["other.example"]: "other.example"}]
        # A monitor that starts during the outage (mrod serve restarted) knows the relays from
        # lookupd's snapshot file: up at the first success, flushed.
        fresh = health.HealthMonitor(cfg, flusher=(restarted := Flushes()))
        assert {(t.before, t.after) for t in await fresh.run_once()} == {("unknown", "up")}
        assert restarted.calls == flushes.calls
        # Back: what it reached is stored, audited from the stored state.
        server.resume()
        await monitor.run_once()
        async with db.opened(target) as conn:
            states = {r["name"]: r["state"] for r in await health.status(conn)}
            entries = await audit.entries(conn, entity="relay", key="primary", action="state")
        assert states == {"primary": "up", "spare": "up"}
        assert [((e.before or {})["state"], (e.after or {})["state"]) for e in entries] == [("unknown", "up")]
    finally:
        sink.stop()


async def test_without_memory_or_snapshot_file_it_says_so(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, database={"url": f"postgresql://mrod@127.0.0.1:{free_port()}/mrod"},
                      lookupd={"socketmap": "", "policy": ""})
    with pytest.raises(DatabaseUnreachable, match="no routing snapshot to go on from"):
        await health.HealthMonitor(cfg, flusher=Flushes()).run_once()
