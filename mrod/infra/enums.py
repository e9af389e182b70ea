"""The words mrod stores and speaks, each list defined once. The SQL CHECK constraints in
mrod/migrations name the same values (tests/core/test_enums.py holds them to it)."""

from __future__ import annotations

# relay.protocol, domain.protocol: plain/STARTTLS, or implicit TLS.
PROTOCOLS = ("smtp", "smtps")
# relay.tls, domain.tls: Postfix's TLS security levels, weakest first (routing ranks by position).
TLS_LEVELS = ("may", "encrypt", "verify", "secure")
# domain.recipients, domain.source, domain.route, domain.verify_when_down.
RECIPIENT_POLICIES = ("accept_all", "listed", "verify")
SOURCES = ("manual", "api", "bind", "catalog")
ROUTES = ("relay", "dns-txt", "dns-dom", "dns-sub")
VERIFY_WHEN_DOWN = ("accept", "defer")
# permission.name.
PERMISSIONS = ("usermgr", "domains", "domains_own", "relay", "relay_own", "logs", "blocklist", "queue")
# relay_health.state; domain_check.status; import_run.status; login_block.kind.
HEALTH_STATES = ("unknown", "up", "down")
CHECK_STATUSES = ("ok", "warning", "error")
RUN_STATUSES = ("ok", "failed")
BLOCK_KINDS = ("ip", "user")
# change.entity: what a journal row is about (mrod/infra/journal.py, migration 0005).
CHANGE_ENTITIES = ("domain", "relay", "all")
# The maps lookupd serves Postfix (socketmap names, tcp_table endpoints).
MAPS = ("relay_domains", "transport", "relay_recipients", "tls_policy")
