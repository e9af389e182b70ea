"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json (no token needed:
it describes, it reveals no data). A test checks that every API route is described here and
that nothing described is missing from the router.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mrod.entities import domains, users
from mrod.infra import enums


Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, permission: str, ok: Schema | None = None, *, body: Schema | None = None,
        params: list[Schema] | None = None, status: str = "200") -> Schema:
    op: Schema = {"summary": summary, "description": f"Needs the permission: {permission}.",
                  "responses": {status: {"description": "success", **_json(ok or {"type": "object"})},
                                "400": {"description": "a value was refused", **_json(_ref("Error"))},
                                "401": {"description": "no valid token", **_json(_ref("Error"))},
                                "403": {"description": "not permitted", **_json(_ref("Error"))},
                                "404": {"description": "not found", **_json(_ref("Error"))}}}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    return op


def _path(name: str, what: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": what, "schema": {"type": "string"}}


def _query(name: str, what: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": what, "schema": schema or {"type": "string"}}


PAGE = [_query("limit", "page size (1-1000, default 50)", {"type": "integer"}),
        _query("offset", "rows to skip", {"type": "integer"})]
DOMAIN = _path("name", "domain name (A-label or Unicode)")
RELAY = _path("relay", "relay name or id")
USER = _path("user", "user name or id")
SOURCE = _path("name", "recipient source name")
ROUTE_FIELDS: Schema = {
    "relay": {"type": "string", "description": "route through this relay"},
    "host": {"type": "string", "description": "or: the primary's own host (override)"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "protocol": {"enum": list(enums.PROTOCOLS)},
    "tls": {"enum": list(enums.TLS_LEVELS)},
    "mx": {"type": "boolean", "description": "or: route by the domain's own MX records"},
    "enabled": {"type": "boolean"},
    "include_subdomains": {"type": "boolean"},
    "recipients": {"enum": list(enums.RECIPIENT_POLICIES)},
    "owner_id": {"type": ["integer", "null"], "description": "only with the permission 'domains'"},
}
# The policy service's per-domain settings (docs/operations.md); absent from a PATCH: unchanged.
_QUOTA = "defer new mail while this much waits in the queue; 0: no limit; null: [policy]'s default"
POLICY_FIELDS: Schema = {
    "paused": {"type": "boolean", "description": "true: new mail is deferred (450) until unpaused"},
    "pause_reason": {"type": ["string", "null"], "maxLength": 200,
                     "description": "told to senders while paused; one line; kept until changed (null clears it)"},
    "quota_messages": {"type": ["integer", "null"], "minimum": 0, "maximum": domains.MAX_QUOTA,
                       "description": f"messages: {_QUOTA}"},
    "quota_bytes": {"type": ["integer", "null"], "minimum": 0, "maximum": domains.MAX_QUOTA,
                    "description": f"bytes: {_QUOTA}"},
    "verify_when_down": {"enum": list(enums.VERIFY_WHEN_DOWN),
                         "description": "recipients=verify: what unknown recipients get while the primary is down"},
    "when_primary_up": {"enum": list(enums.WHEN_PRIMARY_UP),
                        "description": "while this node sees the primary up: accept, defer (4xx: senders retry the"
                                       " primary), or inherit the relay's (default)"},
    "queue_lifetime": {"type": ["integer", "string", "null"],
                       "description": "retention: seconds (or '3d', '12h') this domain's mail may wait before mrod"
                                      " returns it to its sender; null: Postfix's maximal_queue_lifetime"},
}
_RELAY_MODE = {"enum": list(enums.RELAY_WHEN_PRIMARY_UP),
               "description": "while it is up: accept its domains' mail (default) or defer it"
                              " (a domain may say otherwise)"}
SCHEMAS: Schema = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string"}, "status": {"type": "integer"}, "field": {"type": "string"}}},
    "Domain": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "display_name": {"type": "string"},
        "relay_id": {"type": ["integer", "null"]}, "relay_name": {"type": ["string", "null"]},
        "route_kind": {"enum": ["relay", "host", "mx"]}, "source": {"enum": list(enums.SOURCES)},
        "route": {"enum": list(enums.ROUTES), "description": "what decided the route"},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"}, **ROUTE_FIELDS, **POLICY_FIELDS}},
    "DomainInput": {"type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, **ROUTE_FIELDS, **POLICY_FIELDS}},
    "DomainChange": {"type": "object", "description": "only the fields given change",
                     "properties": {**ROUTE_FIELDS, **POLICY_FIELDS}},
    "DomainPage": {"type": "object", "properties": {"total": {"type": "integer"}, "limit": {"type": "integer"},
                   "offset": {"type": "integer"}, "items": {"type": "array", "items": _ref("Domain")}}},
    "BulkInput": {"type": "object", "required": ["domains"], "properties": {
        "domains": {"type": "array", "items": {"type": "string"}, "description": "'domain' or 'domain relay'"},
        "relay": {"type": "string", "description": "default relay"}, "skip_existing": {"type": "boolean"}}},
    "BulkReport": {"type": "object", "properties": {
        "added": {"type": "array", "items": {"type": "string"}},
        "skipped": {"type": "array", "items": {"type": "object"}},
        "refused": {"type": "array", "items": {"type": "object"}}}},
    "BulkUpdate": {"type": "object", "required": ["set"], "description": "domains or filter, not both",
                   "properties": {
                       "domains": {"type": "array", "items": {"type": "string"}, "description": "names to change"},
                       "filter": {"type": "object", "description": "or: every domain matching the list's filters",
                                  "properties": {"q": {"type": "string"}, "enabled": {"type": "boolean"},
                                                 "source": {"enum": list(enums.SOURCES)},
                                                 "relay": {"type": "string"},
                                                 "recipients": {"enum": list(enums.RECIPIENT_POLICIES)}}},
                       "set": {**_ref("DomainChange"), "description": "the settings to change (owner_id excluded)"}}},
    "BulkUpdateResult": {"type": "object", "properties": {
        "changed": {"type": "array", "items": {"type": "string"}},
        "unchanged": {"type": "array", "items": {"type": "string"}}}},
    "CsvReport": {"type": "object", "properties": {
        "applied": {"type": "boolean"}, "added": {"type": "array", "items": {"type": "string"}},
        "changed": {"type": "array", "items": {"type": "object", "properties": {
            "domain": {"type": "string"}, "fields": {"type": "array", "items": {"type": "string"}}}}},
        "unchanged": {"type": "integer"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "line": {"type": "integer"}, "why": {"type": "string"}}}}}},
    "Told": {"type": "array", "items": {"type": "object", "properties": {
        "map": {"type": "string"}, "key": {"type": "string"}, "status": {"enum": ["OK", "NOTFOUND", "TEMP"]},
        "value": {"type": "string"}, "why": {"type": "string"}}}},
    "Recipient": {"type": "object", "properties": {"id": {"type": "integer"}, "domain": {"type": "string"},
                  "address": {"type": "string"}, "created_at": {"type": "string"}}},
    "Relay": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "host": {"type": "string"},
        "port": {"type": "integer"}, "protocol": {"enum": list(enums.PROTOCOLS)},
        "tls": {"enum": list(enums.TLS_LEVELS)}, "owner_id": {"type": ["integer", "null"]},
        "when_primary_up": _RELAY_MODE,
        "domain_count": {"type": "integer"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        "health": {"type": "object", "description": "as mrod serve's probes last saw it (not in add/change answers)",
                   "properties": {
                       "state": {"enum": list(enums.HEALTH_STATES)}, "since": {"type": ["string", "null"]},
                       "last_probe_at": {"type": ["string", "null"]}, "last_ok": {"type": ["boolean", "null"]},
                       "last_latency_ms": {"type": ["number", "null"]}, "starttls": {"type": ["boolean", "null"]},
                       "last_detail": {"type": ["string", "null"]}}}}},
    "RelayInput": {"type": "object", "required": ["name", "host"], "properties": {
        "name": {"type": "string"}, "host": {"type": "string"}, "port": {"type": "integer"},
        "protocol": {"enum": list(enums.PROTOCOLS)}, "tls": {"enum": list(enums.TLS_LEVELS)},
        "owner_id": {"type": ["integer", "null"]}, "when_primary_up": _RELAY_MODE}},
    "Notification": {"type": "object", "properties": {
        "id": {"type": "integer"}, "node": {"type": "string"}, "at": {"type": "string"},
        "event": {"type": "string", "description": "the event kind (relay_down, queue_old…), 'digest' or 'test'"},
        "subject": {"type": "string"}, "channel": {"enum": list(enums.NOTIFY_CHANNELS)},
        "recipient": {"type": "string"}, "status": {"enum": list(enums.NOTICE_STATUSES)},
        "attempts": {"type": "integer"}, "next_attempt_at": {"type": ["string", "null"]},
        "last_error": {"type": ["string", "null"]}, "delivered_at": {"type": ["string", "null"]},
        "title": {"type": "string"}, "text": {"type": "string"}}},
    "Outages": {"type": "object", "properties": {
        "availability_7d": {"type": ["number", "null"]}, "availability_30d": {"type": ["number", "null"]},
        "node": {"type": "string"}, "hold": {"type": ["object", "null"]},
        "refused": {"type": "array", "items": {"type": "object"}},
        "outages": {"type": "array", "items": {"type": "object", "properties": {
            "started_at": {"type": "string"}, "ended_at": {"type": ["string", "null"]},
            "duration_s": {"type": "number"}, "ongoing": {"type": "boolean"}, "queued": {"type": "integer"},
            "flushed_at": {"type": ["string", "null"]}, "flush_s": {"type": ["number", "null"]},
            "node": {"type": "string"}, "relay": {"type": "string"}}}}}},
    "Probe": {"type": "object", "properties": {
        "verdict": {"enum": ["ok", "warning", "fail"]}, "ok": {"type": "boolean"}, "summary": {"type": "string"},
        "up": {"type": "boolean", "description": "not fail: what the health monitor would record"},
        "banner": {"type": ["string", "null"]}, "starttls": {"type": ["boolean", "null"]},
        "tls_ok": {"type": ["boolean", "null"]}, "latency_ms": {"type": ["number", "null"]},
        "steps": {"type": "array", "items": {"type": "string"}}}},
    "User": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "is_admin": {"type": "boolean"},
        "enabled": {"type": "boolean"}, "permissions": {"type": "array", "items": {"enum": list(enums.PERMISSIONS)}},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        "email": {"type": ["string", "null"], "description": "contact address: notifications about the user's"
                                                             " own domains go there"}}},
    "UserInput": {"type": "object", "required": ["name", "password"], "properties": {
        "name": {"type": "string"}, "password": {"type": "string", "minLength": users.MIN_PASSWORD},
        "is_admin": {"type": "boolean"}, "enabled": {"type": "boolean"},
        "permissions": {"type": "array", "items": {"enum": list(enums.PERMISSIONS)}}}},
    "AuditPage": {"type": "object", "properties": {"total": {"type": "integer"}, "items": {"type": "array",
                  "items": {"type": "object"}}}},
}
DOMAIN_FILTERS = [_query("q", "name contains"), _query("enabled", "true or false"),
                  _query("source", ", ".join(enums.SOURCES)), _query("relay", "relay name, or - for none"),
                  _query("recipients", ", ".join(enums.RECIPIENT_POLICIES)),
                  _query("sort", ", ".join(domains.SORTABLE)), _query("order", "asc or desc"), *PAGE]
AUDIT_FILTERS = [_query(k, w) for k, w in (("entity", "domain, relay, recipient, user, ..."), ("actor", "who"),
                 ("action", "add, update, remove, ..."), ("key", "the changed object's key"),
                 ("search", "text in key/before/after"), ("since", "ISO time or date"),
                 ("until", "ISO time or date"))] + PAGE
PATHS: Schema = {
    "/openapi.json": {"get": {"summary": "This document", "security": [],
                              "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    "/me": {"get": _op("The token's user and effective permissions", "any", _ref("User"))},
    "/domains": {
        "get": _op("List domains (filtered, sorted, paged)", "domains or domains_own", _ref("DomainPage"),
                   params=DOMAIN_FILTERS),
        "post": _op("Add a domain", "domains or domains_own", _ref("Domain"), body=_ref("DomainInput"), status="201")},
    "/domains/bulk": {"post": _op("Add many domains in one transaction; refused lines are reported",
                                  "domains or domains_own", _ref("BulkReport"), body=_ref("BulkInput"))},
    "/domains/bulk-update": {"post": _op(
        "Change many domains (named, or all matching a filter) in one audited transaction; one refusal "
        "refuses all", "domains or domains_own (own only)", _ref("BulkUpdateResult"), body=_ref("BulkUpdate"))},
    "/domains/export": {"get": {**_op("Every field of the domains as CSV (the list's filters apply)",
                                      "domains or domains_own (own only)", params=DOMAIN_FILTERS[:5]),
                                "responses": {"200": {"description": "CSV with a header row",
                                                      "content": {"text/csv": {"schema": {"type": "string"}}}},
                                              "401": {"description": "no valid token", **_json(_ref("Error"))},
                                              "403": {"description": "not permitted", **_json(_ref("Error"))}}}},
    "/domains/import": {"post": {**_op(
        "Import CSV (the export's columns; only name required): adds new domains, changes existing ones where "
        "a value differs; all or nothing. Without ?apply=true a preview: the same report, nothing written",
        "domains or domains_own (own only)", _ref("CsvReport"),
        params=[_query("apply", "true: import; otherwise preview only", {"type": "boolean"})]),
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}},
    "/domains/{name}": {
        "get": _op("One domain", "domains or domains_own (own)", _ref("Domain"), params=[DOMAIN]),
        "patch": _op("Change a domain", "domains or domains_own (own)", _ref("Domain"), body=_ref("DomainChange"),
                     params=[DOMAIN]),
        "delete": _op("Delete a domain", "domains or domains_own (own)", params=[DOMAIN])},
    "/domains/{name}/told": {"get": _op("What Postfix is told (the answers lookupd gives)",
                                        "domains or domains_own (own)", _ref("Told"),
                                        params=[DOMAIN, _query("recipient", "an address or local part to try")])},
    "/domains/{name}/recipients": {
        "get": _op("Listed recipients", "domains or domains_own (own)",
                   {"type": "array", "items": _ref("Recipient")}, params=[DOMAIN]),
        "post": _op("List a recipient", "domains or domains_own (own)", _ref("Recipient"),
                    body={"type": "object", "required": ["address"], "properties": {"address": {"type": "string"}}},
                    params=[DOMAIN], status="201")},
    "/domains/{name}/recipients/{address}": {"delete": _op(
        "Remove a listed recipient", "domains or domains_own (own)",
        params=[DOMAIN, _path("address", "the address (or @domain)")])},
    "/relays": {
        "get": _op("List relays", "relay or relay_own", {"type": "array", "items": _ref("Relay")}),
        "post": _op("Add a relay", "relay or relay_own", _ref("Relay"), body=_ref("RelayInput"), status="201")},
    "/relays/{relay}": {
        "get": _op("One relay", "relay or relay_own (own)", _ref("Relay"), params=[RELAY]),
        "patch": _op("Change a relay", "relay or relay_own (own)", _ref("Relay"), body=_ref("RelayInput"),
                     params=[RELAY]),
        "delete": _op("Delete a relay (refused while domains use it, unless ?reassign=OTHER)",
                      "relay or relay_own (own)", params=[RELAY, _query("reassign", "move its domains here")])},
    "/relays/{relay}/test": {"post": _op("Test the connection: banner, EHLO, STARTTLS, latency",
                                         "relay or relay_own (own)", _ref("Probe"), params=[RELAY])},
    "/relays/{relay}/outages": {"get": _op(
        "The relay's outages as this node saw them (start, end, duration, mail queued, flush time) and its "
        "availability over 7 and 30 days", "relay or relay_own (own)", _ref("Outages"), params=[RELAY])},
    "/domains/{name}/outages": {"get": _op(
        "The domain's relay's outages and availability, whether the domain is held (by hand or by the circuit "
        "breaker), and the mail its primary refused after this backup accepted it",
        "domains or domains_own (own)", _ref("Outages"), params=[DOMAIN])},
    "/domains/{name}/hold": {"post": _op(
        "Hold the domain's queued mail (postsuper -h): kept, not delivered, not expired; mail arriving later is "
        "held at each queue reading", "queue (domains_own without domains: own domains only)",
        {"type": "object"}, params=[DOMAIN])},
    "/domains/{name}/release": {"post": _op(
        "Release a held domain: its mail is given back to Postfix and delivered now",
        "queue (domains_own without domains: own domains only)", {"type": "object"}, params=[DOMAIN])},
    "/users": {
        "get": _op("List users", "usermgr", {"type": "array", "items": _ref("User")}),
        "post": _op("Add a user", "usermgr (admins only by an admin)", _ref("User"), body=_ref("UserInput"),
                    status="201")},
    "/users/{user}": {
        "get": _op("One user", "usermgr", _ref("User"), params=[USER]),
        "patch": _op("Change a user (a new password ends their sessions)", "usermgr", _ref("User"),
                     body={"type": "object", "properties": {
                         **{k: v for k, v in SCHEMAS["UserInput"]["properties"].items() if k != "name"},
                         "email": {"type": ["string", "null"], "description": "contact address for notifications"
                                                                              " (null or \"\" removes it)"}}},
                     params=[USER]),
        "delete": _op("Delete a user", "usermgr", params=[USER])},
    "/audit": {"get": _op("The audit log, newest first", "logs", _ref("AuditPage"), params=AUDIT_FILTERS)},
    "/checks": {"get": _op(
        "The last DNS check of each domain, worst first, each finding with what to fix",
        "domains or domains_own (own only)",
        {"type": "object", "properties": {
            "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "domain": {"type": "string"}, "status": {"enum": list(enums.CHECK_STATUSES)},
                "checked_at": {"type": "string"},
                "findings": {"type": "array", "items": {"type": "object", "properties": {
                    "level": {"enum": ["error", "warning", "info"]}, "code": {"type": "string"},
                    "message": {"type": "string"}, "fix": {"type": "string"}}}}}}}}},
        params=[_query("status", "error, warning or ok"), _query("q", "name contains"), *PAGE])},
    "/mta-sts": {"get": _op(
        "Each domain's cached MTA-STS policy and DANE verdict, and the tls_policy answer given for it"
        " when it is routed by its MX (docs/tls.md)",
        "domains or domains_own (own only)",
        {"type": "array", "items": {"type": "object", "properties": {
            "domain": {"type": "string"}, "policy_id": {"type": ["string", "null"]},
            "mode": {"enum": [*enums.STS_MODES, None]}, "mx": {"type": "array", "items": {"type": "string"}},
            "max_age": {"type": ["integer", "null"]}, "fetched_at": {"type": ["string", "null"]},
            "expires_at": {"type": ["string", "null"]}, "dane": {"type": "boolean"},
            "answer": {"type": ["string", "null"]}, "checked_at": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]}}}})},
    # Operating the backup MX (admin/queue.py).
    "/queue": {"get": _op(
        "Mail waiting in Postfix's queue per domain, as last read (messages, bytes, oldest arrival, last delay reason);"
        " readings: each node's last reading that worked (read_at) and, while its latest attempt fails, when and"
        " why (failed_at, error). No reading for a node: its queue was never read — not an empty queue",
        "queue (domains_own without domains: own domains only)",
        {"type": "object", "properties": {"domains": {"type": "array", "items": {"type": "object"}},
                                          "readings": {"type": "array", "items": {"type": "object"}}}})},
    "/queue/{name}/flush": {"post": _op(
        "Deliver the domain's queued mail now (postqueue -s for it and its subdomains); ok says whether "
        "Postfix took every flush", "queue (domains_own without domains: own domains only)",
        {"type": "object", "properties": {"ok": {"type": "boolean"}, "flushed": {"type": "array",
                                                                             "items": {"type": "object"}}}},
        params=[DOMAIN, _query("node", "the node holding the mail (several nodes, one database): another node"
                               " than this one is asked through the database and flushes at its next queue reading")])},
    "/trust-kit": {"get": _op(
        "What the primary's filters need to trust this cluster's backup MX nodes (docs/antispam.md): the kit in one "
        "format (text, as `mrod trust-kit --format F` prints it) and every node's [node] public_addresses "
        "(empty: not set, the text says so)", "relay",
        {"type": "object", "properties": {
            "format": {"enum": list(enums.TRUST_KIT_FORMATS)}, "text": {"type": "string"},
            "nodes": {"type": "array", "items": {"type": "object", "properties": {
                "node": {"type": "string"}, "public_addresses": {"type": "array", "items": {"type": "string"}}}}}}},
        params=[_query("format", "rspamd (the default), spamassassin, postscreen, postfix or spf",
                       {"enum": list(enums.TRUST_KIT_FORMATS)})])},
    # Notifications (admin/notify.py, mrod/notify).
    "/notifications": {"get": _op(
        "The notifications sent (newest first): event, subject, channel, recipient, status (pending, delivered,"
        " retrying, failed), attempts, last error; and the channels set up with their state (ok, failing, unused)",
        "logs",
        {"type": "object", "properties": {
            "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
            "channels": {"type": "array", "items": {"type": "object", "properties": {
                "channel": {"enum": list(enums.NOTIFY_CHANNELS)}, "target": {"type": "string"},
                "state": {"enum": ["ok", "failing", "unused"]}, "last_at": {"type": ["string", "null"]},
                "last_error": {"type": ["string", "null"]}, "retrying": {"type": "integer"}}}},
            "items": {"type": "array", "items": _ref("Notification")}}},
        params=[_query("status", "only this status", {"enum": list(enums.NOTICE_STATUSES)}),
                _query("channel", "only this channel", {"enum": list(enums.NOTIFY_CHANNELS)}), *PAGE])},
    "/notifications/test/{channel}": {"post": _op(
        "Send a test message through a channel now (one attempt); ok says whether every recipient got it",
        "logs",
        {"type": "object", "properties": {"ok": {"type": "boolean"},
                                          "sent": {"type": "array", "items": _ref("Notification")}}},
        params=[_path("channel", "email or webhook")])},
    # Recipient sources (admin/recipientsources.py, docs/recipient-sources.md).
    "/recipient-sources": {
        "get": _op("Recipient sources with their last sync: state (ok, failing, held, never synced), ok_at,"
                   " age_seconds, addresses, domain_counts, ignored (addresses of domains not fed), error,"
                   " failing_since",
                   "administrator", {"type": "object", "properties": {"items": {"type": "array",
                                                                              "items": _ref("RecipientSource")}}}),
        "post": _op("Add a recipient source (no password in the URL: password_file names a file on the host)",
                    "administrator", _ref("RecipientSource"), body=_ref("RecipientSourceInput"), status="201")},
    "/recipient-sources/{name}": {
        "get": _op("One recipient source", "administrator", _ref("RecipientSource"), params=[SOURCE]),
        "delete": _op("Remove a recipient source (its domains keep their lists)", "administrator", params=[SOURCE])},
    "/recipient-sources/{name}/sync": {"post": _op(
        "Sync now; 502 with error when the source failed or its result was held for safety", "administrator",
        _ref("SyncOutcome"), params=[SOURCE])},
    "/recipient-sources/{name}/accept": {"post": _op(
        "Accept what a held sync would do (empty, or removing more than max_removal) and sync now", "administrator",
        _ref("SyncOutcome"), params=[SOURCE])},
    "/domains/{name}/recipient-source": {"put": _op(
        "Which recipient source feeds the domain: a source name, none (not even its relay's) or inherit (its"
        " relay's)", "administrator", body={"type": "object", "required": ["source"],
                                            "properties": {"source": {"type": "string"}}}, params=[DOMAIN])},
    "/relays/{relay}/recipient-source": {"put": _op(
        "Which recipient source feeds the relay's domains (those without their own choice): a name or none",
        "administrator", body={"type": "object", "required": ["source"], "properties": {"source": {"type": "string"}}},
        params=[RELAY])},
    "/queue/messages": {"get": _op(
        "Queued messages one by one, read from Postfix now: queue id, queue, sender, recipients, size, age, last"
        " delay reason; in queue-id order, a page after the cursor 'after' (next_after: the next page's cursor);"
        " total counts every match", "queue for the whole queue; domains or domains_own with ?domain= (domains_own:"
        " only messages whose recipients are all in their own domains)",
        {"type": "object", "properties": {"messages": {"type": "array", "items": {"type": "object"}},
                                          "total": {"type": "integer"}, "next_after": {"type": ["string", "null"]}}},
        params=[_query("domain", "messages with a recipient in this domain (and its subdomains when it includes them)"),
                _query("queue", ", ".join(enums.QUEUE_NAMES)), _query("sender", "sender contains"),
                _query("recipient", "a recipient contains"), _query("older_than", "waiting at least, e.g. 1h or 3d"),
                _query("limit", "messages per page, 1-1000 (default 50)"),
                _query("after", "the previous page's last queue id")])},
    "/queue/messages/{action}": {"post": _op(
        "Hold, release (then delivered now), requeue or delete chosen messages (postsuper), audited with the ids;"
        " done: how many Postfix acted on", "queue, domains or domains_own (own messages only)",
        {"type": "object", "properties": {"action": {"type": "string"},
                                          "ids": {"type": "array", "items": {"type": "string"}},
                                          "done": {"type": "integer"}, "skipped": {"type": "integer"},
                                          "failures": {"type": "array", "items": {"type": "string"}}}},
        body={"type": "object", "properties": {
            "ids": {"type": "array", "items": {"type": "string"}, "description": "queue ids"},
            "domain": {"type": "string"}, "all_matching": {"type": "boolean", "description": "with domain: every"
                                                           " message wholly for it (and the filters below)"},
            "queue": {"type": "string"}, "sender": {"type": "string"}, "recipient": {"type": "string"},
            "older_than": {"type": "string"},
            "confirm": {"type": "boolean", "description": "delete: must be true"}}},
        params=[_path("action", "hold, release, requeue or delete")])},
    "/metrics": {"get": {**_op("Prometheus metrics (text exposition format)", "queue (no owner restriction)"),
                         "responses": {"200": {"description": "metrics",
                                               "content": {"text/plain": {"schema": {"type": "string"}}}},
                                       "401": {"description": "no valid token", **_json(_ref("Error"))},
                                       "403": {"description": "not permitted", **_json(_ref("Error"))}}}},
}

_SOURCE_INPUT: Schema = {
    "name": {"type": "string"}, "kind": {"enum": list(enums.SOURCE_KINDS)},
    "url": {"type": "string", "description": "ldap(s)://, postgresql://, mysql://, http(s):// — no password"},
    "base": {"type": "string"}, "filter": {"type": "string"}, "attributes": {"type": "string"},
    "bind_dn": {"type": "string"}, "starttls": {"type": "boolean"}, "ca_file": {"type": "string"},
    "query": {"type": "string"}, "format": {"enum": list(enums.SOURCE_FORMATS)},
    "password_file": {"type": "string", "description": "absolute path on the host; its first line is the password"}}
SCHEMAS["RecipientSourceInput"] = {"type": "object", "required": ["name", "kind", "url"], "properties": _SOURCE_INPUT}
SCHEMAS["RecipientSource"] = {"type": "object", "properties": {
    **_SOURCE_INPUT, "state": {"enum": ["ok", "failing", "held", "never synced"]}, "domains": {"type": "array"},
    "ok_at": {"type": ["string", "null"]}, "synced_at": {"type": ["string", "null"]},
    "age_seconds": {"type": ["integer", "null"]}, "addresses": {"type": ["integer", "null"]},
    "ignored": {"type": ["integer", "null"]}, "domain_counts": {"type": "object"},
    "error": {"type": ["string", "null"]}, "failing_since": {"type": ["string", "null"]}}}
SCHEMAS["SyncOutcome"] = {"type": "object", "properties": {
    "source": {"type": "string"}, "applied": {"type": "boolean"}, "held": {"type": "boolean"},
    "skipped": {"type": "boolean", "description": "another node holds the sync lease"},
    "error": {"type": ["string", "null"]}, "addresses": {"type": "integer"}, "ignored": {"type": "integer"},
    "invalid": {"type": "integer"}, "per_domain": {"type": "object"}, "added": {"type": "integer"},
    "removed": {"type": "integer"}}}


def build() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mrod admin API", "version": "1",
                 "description": "Manage a Postfix backup MX: domains, relays, recipients, users, audit log. "
                                "Authenticate with an API token from your profile page: "
                                "`Authorization: Bearer mrod_...`."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": SCHEMAS},
        "paths": PATHS,
    }


async def document(request: web.Request) -> web.StreamResponse:
    return web.json_response(build())
