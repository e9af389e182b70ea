-- The trust kit and certificate findings (issues 20.4, 22.3).
--
-- Each node's [node] public_addresses, reported with its status row (mrod.operations.nodereports),
-- so any node and the panel can print the primary's trust kit for the whole cluster
-- (mrod.operations.trustkit). NULL: the node has not reported any (the kit says so).
-- A space-separated list of addresses and CIDR networks, as normalised by the config check.
ALTER TABLE node_status ADD COLUMN public_addresses TEXT;

-- The certificate a relay presented when this node's health probe completed STARTTLS or implicit
-- TLS (mrod.operations.health): when it expires and the names it covers (space-separated), or
-- why the handshake's verification failed (tls verify/secure). The DNS checks judge them
-- (mrod.operations.certchecks).
ALTER TABLE relay_health ADD COLUMN cert_not_after TEXT;
ALTER TABLE relay_health ADD COLUMN cert_names TEXT;
ALTER TABLE relay_health ADD COLUMN cert_error TEXT;

-- Findings about this node itself rather than a domain (Postfix's own certificate): one row
-- per node, written by each DNS-check run, shown above the domains on the DNS checks page.
CREATE TABLE host_check (
    node       TEXT NOT NULL PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('ok', 'warning', 'error')),
    findings   TEXT NOT NULL,
    checked_at TEXT NOT NULL
);
