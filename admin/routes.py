"""Every route of the panel and the API, named, in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from mrod.admin import (
    api,
    auth,
    blocklist,
    dashboard,
    dnschecks,
    mtasts,
    domainbulk,
    domainbulkapi,
    domains,
    domainview,
    logs,
    notify,
    openapi,
    outages,
    profile,
    recipientsources,
    queuemessages,
    relays,
    trustkit,
    twofactor,
    users,
)
from mrod.admin import queue as operations
from mrod.admin import bindimport

STATIC = Path(__file__).parent / "static"

# (name, path, {method: handler}) — the permission checks live on the handlers (auth.needs).
PANEL: list[tuple[str, str, dict[str, Handler]]] = [
    ("login", "/login", {"GET": auth.login_form, "POST": auth.login}),
    ("login_code", "/login/code", {"GET": twofactor.code_form, "POST": twofactor.code}),
    ("logout", "/logout", {"POST": auth.logout}),
    ("dashboard", "/", {"GET": dashboard.show}),
    ("domains", "/domains", {"GET": domains.listing}),
    ("domain_new", "/domains/new", {"GET": domains.new_form, "POST": domains.create}),
    ("domain_bulk", "/domains/bulk", {"GET": domains.bulk_form, "POST": domains.bulk}),
    ("domain_bulk_edit", "/domains/bulk-edit", {"POST": domainbulk.bulk_edit}),
    ("domain_export", "/domains/export", {"GET": domainbulk.export}),
    ("domain_import", "/domains/import", {"GET": domainbulk.import_form, "POST": domainbulk.import_post}),
    ("domain", "/domains/{name}", {"GET": domainview.show}),
    ("domain_queue", "/domains/{name}/queue", {"GET": queuemessages.domain_page, "POST": queuemessages.domain_action}),
    ("domain_edit", "/domains/{name}/edit", {"GET": domains.edit_form, "POST": domains.update}),
    ("domain_delete", "/domains/{name}/delete", {"GET": domains.delete_form, "POST": domains.delete}),
    ("recipient_add", "/domains/{name}/recipients", {"POST": domainview.recipient_add}),
    ("recipient_remove", "/domains/{name}/recipients/remove", {"POST": domainview.recipient_remove}),
    ("domain_hold", "/domains/{name}/hold", {"POST": outages.hold}),
    ("domain_release", "/domains/{name}/release", {"POST": outages.release}),
    ("relays", "/relays", {"GET": relays.listing}),
    ("relay_new", "/relays/new", {"GET": relays.new_form, "POST": relays.create}),
    ("relay", "/relays/{id:\\d+}", {"GET": relays.edit_form, "POST": relays.update}),
    ("relay_delete", "/relays/{id:\\d+}/delete", {"GET": relays.delete_form, "POST": relays.delete}),
    ("relay_test", "/relays/{id:\\d+}/test", {"POST": relays.test}),
    ("recipient_sources", "/recipient-sources", {"GET": recipientsources.listing}),
    ("recipient_source_new", "/recipient-sources/new", {"GET": recipientsources.new_form,
                                                        "POST": recipientsources.create}),
    ("recipient_source", "/recipient-sources/{name}", {"GET": recipientsources.edit_form,
                                                       "POST": recipientsources.update}),
    ("recipient_source_sync", "/recipient-sources/{name}/sync", {"POST": recipientsources.sync_now}),
    ("recipient_source_accept", "/recipient-sources/{name}/accept", {"POST": recipientsources.accept}),
    ("recipient_source_delete", "/recipient-sources/{name}/delete", {"POST": recipientsources.delete}),
    ("recipient_source_use", "/recipient-sources/{name}/use", {"POST": recipientsources.use}),
    ("users", "/users", {"GET": users.listing}),
    ("user_new", "/users/new", {"GET": users.new_form, "POST": users.create}),
    ("user", "/users/{id:\\d+}", {"GET": users.edit_form, "POST": users.update}),
    ("user_delete", "/users/{id:\\d+}/delete", {"GET": users.delete_form, "POST": users.delete}),
    ("logs", "/logs", {"GET": logs.listing}),
    ("blocklist", "/blocklist", {"GET": blocklist.show}),
    ("bind_import", "/bind-import", {"GET": bindimport.show}),
    ("bind_import_preview", "/bind-import/preview", {"POST": bindimport.preview}),
    ("bind_import_run", "/bind-import/run", {"POST": bindimport.run_now}),
    ("dns_checks", "/dns", {"GET": dnschecks.listing}),
    ("mta_sts", "/mta-sts", {"GET": mtasts.listing}),
    ("queue", "/queue", {"GET": operations.page}),
    ("trust_kit", "/trust-kit", {"GET": trustkit.page}),
    ("queue_messages", "/queue/messages", {"GET": queuemessages.queue_page, "POST": queuemessages.queue_action}),
    ("queue_refresh", "/queue/refresh", {"POST": operations.refresh}),
    ("queue_flush", "/queue/flush", {"POST": operations.flush}),
    ("metrics", "/metrics", {"GET": operations.metrics_page}),
    ("notifications", "/notifications", {"GET": notify.page}),
    ("notification_test", "/notifications/test", {"POST": notify.send_test}),
    ("block_lift", "/blocklist/{id:\\d+}/lift", {"POST": blocklist.lift}),
    ("profile", "/profile", {"GET": profile.show}),
    ("profile_password", "/profile/password", {"POST": profile.password}),
    ("token_create", "/profile/tokens", {"POST": profile.token_create}),
    ("token_revoke", "/profile/tokens/{id:\\d+}/revoke", {"POST": profile.token_revoke}),
    ("sessions_end", "/profile/sessions/end", {"POST": profile.sessions_end}),
    ("two_factor", "/profile/two-factor", {"GET": twofactor.show}),
    ("two_factor_confirm", "/profile/two-factor/confirm", {"POST": twofactor.confirm}),
    ("two_factor_disable", "/profile/two-factor/disable", {"POST": twofactor.disable}),
]

API = "/api/v1"
API_ROUTES: list[tuple[str, str, dict[str, Handler]]] = [
    ("api_openapi", "/openapi.json", {"GET": openapi.document}),
    ("api_me", "/me", {"GET": api.me}),
    ("api_domains", "/domains", {"GET": api.domain_list, "POST": api.domain_create}),
    ("api_domains_bulk", "/domains/bulk", {"POST": api.domain_bulk}),
    ("api_domains_bulk_update", "/domains/bulk-update", {"POST": domainbulkapi.bulk_update}),
    ("api_domains_export", "/domains/export", {"GET": domainbulkapi.export}),
    ("api_domains_import", "/domains/import", {"POST": domainbulkapi.import_csv}),
    ("api_domain", "/domains/{name}", {"GET": api.domain_get, "PATCH": api.domain_update,
                                       "DELETE": api.domain_delete}),
    ("api_domain_told", "/domains/{name}/told", {"GET": api.domain_told}),
    ("api_recipients", "/domains/{name}/recipients", {"GET": api.recipient_list, "POST": api.recipient_add}),
    ("api_recipient", "/domains/{name}/recipients/{address}", {"DELETE": api.recipient_remove}),
    ("api_relays", "/relays", {"GET": api.relay_list, "POST": api.relay_create}),
    ("api_relay", "/relays/{relay}", {"GET": api.relay_get, "PATCH": api.relay_update, "DELETE": api.relay_delete}),
    ("api_relay_test", "/relays/{relay}/test", {"POST": api.relay_test}),
    ("api_recipient_sources", "/recipient-sources", {"GET": recipientsources.api_list,
                                                     "POST": recipientsources.api_create}),
    ("api_recipient_source", "/recipient-sources/{name}", {"GET": recipientsources.api_get,
                                                           "DELETE": recipientsources.api_delete}),
    ("api_recipient_source_sync", "/recipient-sources/{name}/sync", {"POST": recipientsources.api_sync}),
    ("api_recipient_source_accept", "/recipient-sources/{name}/accept", {"POST": recipientsources.api_accept}),
    ("api_domain_recipient_source", "/domains/{name}/recipient-source",
     {"PUT": recipientsources.api_domain_source}),
    ("api_relay_recipient_source", "/relays/{relay}/recipient-source", {"PUT": recipientsources.api_relay_source}),
    ("api_relay_outages", "/relays/{relay}/outages", {"GET": outages.api_relay}),
    ("api_domain_outages", "/domains/{name}/outages", {"GET": outages.api_domain}),
    ("api_domain_hold", "/domains/{name}/hold", {"POST": outages.api_hold}),
    ("api_domain_release", "/domains/{name}/release", {"POST": outages.api_release}),
    ("api_users", "/users", {"GET": api.user_list, "POST": api.user_create}),
    ("api_user", "/users/{user}", {"GET": api.user_get, "PATCH": api.user_update, "DELETE": api.user_delete}),
    ("api_audit", "/audit", {"GET": api.audit_list}),
    ("api_checks", "/checks", {"GET": dnschecks.api_listing}),
    ("api_mta_sts", "/mta-sts", {"GET": mtasts.api_listing}),
    ("api_queue", "/queue", {"GET": operations.api_queue}),
    ("api_trust_kit", "/trust-kit", {"GET": trustkit.api_kit}),
    ("api_queue_messages", "/queue/messages", {"GET": queuemessages.api_list}),
    ("api_queue_action", "/queue/messages/{action}", {"POST": queuemessages.api_action}),
    ("api_queue_flush", "/queue/{name}/flush", {"POST": operations.api_flush}),
    ("api_metrics", "/metrics", {"GET": operations.metrics_page}),
    ("api_notifications", "/notifications", {"GET": notify.api_listing}),
    ("api_notification_test", "/notifications/test/{channel}", {"POST": notify.api_test}),
]


def setup_routes(app: web.Application) -> None:
    router = app.router
    for prefix, table in (("", PANEL), (API, API_ROUTES)):
        for name, path, methods in table:
            resource = router.add_resource(prefix + path, name=name)
            for method, handler in methods.items():
                resource.add_route(method, handler)
                if method == "GET":         # HEAD: the same answer without its body (monitors, curl -I)
                    resource.add_route("HEAD", handler)
    router.add_static("/static/", STATIC, name="static", append_version=True)
