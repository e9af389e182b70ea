"""What vulture (``make lint``) cannot see used: code called by a framework, attributes a
library reads, fields the panel's templates read. Each entry says who uses it. Dead code is
removed, never listed here; vulture is name-based, so keep this list short."""

from vulture.whitelists.whitelist_utils import Whitelist

from mrod.infra import enums

_ = Whitelist()

# asyncio calls these on a protocol (lookupd/servers.py).
_.eof_received
_.pause_writing
_.resume_writing
# prometheus_client calls a registered collector's collect() at scrape time.
_.collect
# Attributes a library reads once set: argparse, sqlite3/aiosqlite, dnspython, configparser, urllib.
_.formatter_class
_.row_factory
_.nameservers
_.optionxform
_.addheaders
# Read only by the panel's Jinja templates (admin/templates/), which vulture does not read.
_.lifted_by          # blocklist.html
_.enabled_at         # twofactor.html
_.synced_stamp       # dashboard.html
_.reported_stamp     # dashboard.html
# Enumeration members reached by iterating their class (the tuples of mrod/infra/enums.py).
enums.SmtpProtocol.SMTPS
enums.TlsLevel.MAY, enums.TlsLevel.ENCRYPT, enums.TlsLevel.VERIFY, enums.TlsLevel.SECURE
enums.RecipientPolicy.ACCEPT_ALL, enums.RecipientPolicy.LISTED, enums.RecipientPolicy.VERIFY
enums.Source.MANUAL, enums.Source.BIND
enums.VerifyWhenDown.ACCEPT, enums.VerifyWhenDown.DEFER
enums.HealthState.UP, enums.HealthState.DOWN
enums.RunStatus.FAILED
enums.BlockKind.IP
enums.PostfixMap.RELAY_DOMAINS, enums.PostfixMap.TRANSPORT, enums.PostfixMap.RELAY_RECIPIENTS
enums.PostfixMap.TLS_POLICY
enums.TwoFactorMode.NONE
enums.BindSource.NAMED_CONF, enums.BindSource.ZONE_DIR
enums.QueueName.MAILDROP, enums.QueueName.INCOMING
enums.BindZoneType.PRIMARY, enums.BindZoneType.MASTER, enums.BindZoneType.SECONDARY, enums.BindZoneType.SLAVE
# pytest reads these module names and calls these hooks (with the arguments it names).
_.pytestmark
_.pytest_plugins
_.pytest_runtest_makereport
_.pytest_sessionfinish
_.pytest_asyncio_loop_factories
_.pytest_collection_modifyitems
_.pytest_configure
_.pytest_generate_tests
_.pytest_xdist_make_scheduler
_._split_scope       # xdist's LoadScopeScheduling calls it (tests/conftest.py)
# Autouse fixtures: pytest runs them for every test of their module, nothing names them.
_.tools              # tests/core/test_version.py
_.call
_.exitstatus
# aiosmtpd calls a handler's handle_<VERB> with these arguments (tests/harness).
_.handle_RCPT
_.handle_DATA
_.rcpt_options
# A stored notification's column, given out whole by Notice.as_dict (the API's and `mrod notify list --json`'s rows).
_.delivered_at       # mrod/notify/store.py
# http.server calls a handler's do_GET and log_message (tests/postfix/test_synced_recipients.py).
_.do_GET
_.log_message
