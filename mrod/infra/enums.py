"""The words mrod stores and speaks, each list defined once. The SQL CHECK constraints in
mrod/migrations name the same values (tests/core/test_enums.py holds them to it).

Each enumeration is a ``StrEnum`` (its members are the strings the database and the wire carry,
so they compare, hash and bind as those strings) and, beside it, the tuple of its values in
order: ``value in TUPLE`` validates input (on Python 3.11 ``"x" in SomeEnum`` is deprecated
for strings), and messages, choices and schemas list the tuple. Import both from here.
"""

from __future__ import annotations

from enum import StrEnum


class StsMode(StrEnum):
    """mta_sts.mode: an MTA-STS policy's mode (RFC 8461 §3.2)."""
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


class SmtpProtocol(StrEnum):
    """relay.protocol, domain.protocol: plain/STARTTLS, or implicit TLS."""
    SMTP = "smtp"
    SMTPS = "smtps"


class TlsLevel(StrEnum):
    """relay.tls, domain.tls: Postfix's TLS security levels, weakest first (routing ranks by position)."""
    MAY = "may"
    ENCRYPT = "encrypt"
    VERIFY = "verify"
    SECURE = "secure"


class RecipientPolicy(StrEnum):
    """domain.recipients."""
    ACCEPT_ALL = "accept_all"
    LISTED = "listed"
    VERIFY = "verify"


class Source(StrEnum):
    """domain.source: who added the domain."""
    MANUAL = "manual"
    API = "api"
    BIND = "bind"
    CATALOG = "catalog"


class Route(StrEnum):
    """domain.route: a relay, or where DNS says the primary is."""
    RELAY = "relay"
    DNS_TXT = "dns-txt"
    DNS_DOM = "dns-dom"
    DNS_SUB = "dns-sub"


class VerifyWhenDown(StrEnum):
    """domain.verify_when_down."""
    ACCEPT = "accept"
    DEFER = "defer"


class WhenPrimaryUp(StrEnum):
    """domain.when_primary_up / relay.when_primary_up: mail for a domain while its primary is up
    (issue 20.1). A relay says accept or defer; a domain may also inherit its relay's."""
    INHERIT = "inherit"
    ACCEPT = "accept"
    DEFER = "defer"


class Permission(StrEnum):
    """permission.name: what a panel user or API token may do (an admin may do everything)."""
    USERMGR = "usermgr"
    DOMAINS = "domains"
    DOMAINS_OWN = "domains_own"
    RELAY = "relay"
    RELAY_OWN = "relay_own"
    LOGS = "logs"
    BLOCKLIST = "blocklist"
    QUEUE = "queue"


class HealthState(StrEnum):
    """relay_health.state."""
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class CheckStatus(StrEnum):
    """domain_check.status."""
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class RunStatus(StrEnum):
    """import_run.status."""
    OK = "ok"
    FAILED = "failed"


class BlockKind(StrEnum):
    """login_block.kind."""
    IP = "ip"
    USER = "user"


class HoldReason(StrEnum):
    """domain_hold.reason: who held a domain's mail (mrod/entities/holds.py, migration 0015)."""
    MANUAL = "manual"
    BREAKER = "breaker"


class ChangeEntity(StrEnum):
    """change.entity: what a journal row is about (mrod/infra/journal.py, migration 0005)."""
    DOMAIN = "domain"
    RELAY = "relay"
    ALL = "all"


class PostfixMap(StrEnum):
    """The maps lookupd serves Postfix (socketmap names, tcp_table endpoints)."""
    RELAY_DOMAINS = "relay_domains"
    TRANSPORT = "transport"
    RELAY_RECIPIENTS = "relay_recipients"
    TLS_POLICY = "tls_policy"


class TwoFactorMode(StrEnum):
    """[admin] two_factor_required: who must sign in with a TOTP code too."""
    NONE = "none"
    ADMINS = "admins"
    ALL = "all"


class BindSource(StrEnum):
    """[bind] sources: where the importer finds the zones."""
    NAMED_CONF = "named.conf"
    ZONE_DIR = "zone-dir"
    CATALOG = "catalog"


class BindZoneType(StrEnum):
    """[bind] zone_types: the zone types the importer takes (BIND spells each two ways)."""
    PRIMARY = "primary"
    MASTER = "master"
    SECONDARY = "secondary"
    SLAVE = "slave"


class BindStrategy(StrEnum):
    """[bind] strategies: how an imported domain finds its primary (the DNS routes)."""
    DNS_TXT = Route.DNS_TXT.value
    DNS_DOM = Route.DNS_DOM.value
    DNS_SUB = Route.DNS_SUB.value


class TrustKitFormat(StrEnum):
    """`mrod trust-kit --format`: which of the primary's filters the kit is written for."""
    RSPAMD = "rspamd"
    SPAMASSASSIN = "spamassassin"
    POSTSCREEN = "postscreen"
    POSTFIX = "postfix"
    SPF = "spf"


class NoticeStatus(StrEnum):
    """notification.status: one message to one recipient through one channel (mrod/notify)."""
    PENDING = "pending"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"


class Severity(StrEnum):
    """How bad a notification event is (mrod/notify): said in the message and the webhook's JSON."""
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class NotifyChannel(StrEnum):
    """The notification channels ([notify.email], [notify.webhook])."""
    EMAIL = "email"
    WEBHOOK = "webhook"


class SourceKind(StrEnum):
    """Where a recipient source reads its addresses (mrod.recipientsources)."""
    LDAP = "ldap"
    SQL = "sql"
    URL = "url"


class SourceFormat(StrEnum):
    """What a URL recipient source returns."""
    JSON = "json"
    CSV = "csv"


class QueueName(StrEnum):
    """Postfix's queues, as ``postqueue -j`` names them (queue_name)."""
    MAILDROP = "maildrop"
    INCOMING = "incoming"
    ACTIVE = "active"
    DEFERRED = "deferred"
    HOLD = "hold"


class QueueAction(StrEnum):
    """What mrod asks of ``postsuper`` for chosen messages (mrod.operations.postsuper)."""
    HOLD = "hold"
    RELEASE = "release"
    REQUEUE = "requeue"
    DELETE = "delete"
    EXPIRE = "expire"


PROTOCOLS: tuple[SmtpProtocol, ...] = tuple(SmtpProtocol)
TLS_LEVELS: tuple[TlsLevel, ...] = tuple(TlsLevel)
RECIPIENT_POLICIES: tuple[RecipientPolicy, ...] = tuple(RecipientPolicy)
SOURCES: tuple[Source, ...] = tuple(Source)
ROUTES: tuple[Route, ...] = tuple(Route)
VERIFY_WHEN_DOWN: tuple[VerifyWhenDown, ...] = tuple(VerifyWhenDown)
WHEN_PRIMARY_UP: tuple[WhenPrimaryUp, ...] = tuple(WhenPrimaryUp)
RELAY_WHEN_PRIMARY_UP: tuple[WhenPrimaryUp, ...] = tuple(m for m in WhenPrimaryUp if m is not WhenPrimaryUp.INHERIT)
PERMISSIONS: tuple[Permission, ...] = tuple(Permission)
HEALTH_STATES: tuple[HealthState, ...] = tuple(HealthState)
CHECK_STATUSES: tuple[CheckStatus, ...] = tuple(CheckStatus)
RUN_STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
BLOCK_KINDS: tuple[BlockKind, ...] = tuple(BlockKind)
CHANGE_ENTITIES: tuple[ChangeEntity, ...] = tuple(ChangeEntity)
HOLD_REASONS: tuple[HoldReason, ...] = tuple(HoldReason)
STS_MODES: tuple[StsMode, ...] = tuple(StsMode)
MAPS: tuple[PostfixMap, ...] = tuple(PostfixMap)
TWO_FACTOR_MODES: tuple[TwoFactorMode, ...] = tuple(TwoFactorMode)
BIND_SOURCES: tuple[BindSource, ...] = tuple(BindSource)
BIND_ZONE_TYPES: tuple[BindZoneType, ...] = tuple(BindZoneType)
BIND_STRATEGIES: tuple[BindStrategy, ...] = tuple(BindStrategy)
TRUST_KIT_FORMATS: tuple[TrustKitFormat, ...] = tuple(TrustKitFormat)
NOTICE_STATUSES: tuple[NoticeStatus, ...] = tuple(NoticeStatus)
SEVERITIES: tuple[Severity, ...] = tuple(Severity)
NOTIFY_CHANNELS: tuple[NotifyChannel, ...] = tuple(NotifyChannel)
SOURCE_KINDS: tuple[SourceKind, ...] = tuple(SourceKind)
SOURCE_FORMATS: tuple[SourceFormat, ...] = tuple(SourceFormat)
QUEUE_NAMES: tuple[QueueName, ...] = tuple(QueueName)
QUEUE_ACTIONS: tuple[QueueAction, ...] = tuple(QueueAction)
