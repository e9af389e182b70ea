"""Loading a RouteSnapshot from the database: every relay, domain and (on PostgreSQL) listed
recipient, and the journal position, as of one moment."""

from __future__ import annotations

from mrod.answers import snapshotpolicy
from mrod.answers.snapshot import RouteSnapshot
from mrod.infra import journal
from mrod.infra.dbapi import SyncConnection

# The columns a snapshot keeps, in the order RouteSnapshot.put / set_relays take them.
DOMAIN_COLUMNS = "id, name, relay_id, host, port, protocol, tls, enabled, include_subdomains, recipients"
RELAY_COLUMNS = "id, name, host, port, protocol, tls"
MTA_STS_SQL = "SELECT domain, answer FROM mta_sts WHERE answer IS NOT NULL"


def load(conn: SyncConnection, transaction: bool = True, recipients: bool = False) -> RouteSnapshot:
    """Everything, as of one moment (one read transaction; ``transaction=False``: the
    caller's, e.g. PostgreSQL's REPEATABLE READ), with every listed recipient when
    ``recipients``."""
    snap = RouteSnapshot(recipients=recipients)
    if transaction:
        conn.execute("BEGIN")
    try:
        snap.position = journal.position(conn)
        snap.set_relays(conn.execute(f"SELECT {RELAY_COLUMNS} FROM relay"))
        snap.max_id = conn.execute("SELECT coalesce(max(id), 0) FROM domain").fetchone()[0]
        snap.load_domains(conn.execute(f"SELECT {DOMAIN_COLUMNS} FROM domain"))
        snap.policy = snapshotpolicy.load(conn)
        snap.mta_sts = {r[0]: r[1] for r in conn.execute(MTA_STS_SQL)}
        if snap.listed is not None:
            snap.add_recipients(conn.execute("SELECT domain_id, address FROM recipient"))
    finally:
        if transaction:
            conn.execute("COMMIT")
    return snap
