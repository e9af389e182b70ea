"""The configuration's schema: one frozen dataclass per TOML section, every key with its default.

To add a key, add a field to its section (with a comment saying what it is for and, when it
needs one, ``metadata=check(validator)`` from ``checks``). A section that needs a check across
its keys defines ``validate(self)`` raising ValueError. A new section is a new dataclass plus
one line in ``Config``. The loader (loader.py) needs no change for either.
"""

from __future__ import annotations

import dataclasses
import socket
import typing
from dataclasses import dataclass, field
from pathlib import Path

from mrod.infra.config import checks as v
from mrod.infra.config.checks import check
from mrod.infra.enums import BIND_SOURCES, BIND_STRATEGIES, BIND_ZONE_TYPES, TWO_FACTOR_MODES


@dataclass(frozen=True)
class DatabaseConfig:
    path: Path = Path("var/mrod.db")
    # "postgresql://user@host:port/db?sslmode=verify-full", for several nodes: when set, every part of
    # mrod uses this PostgreSQL database instead of the SQLite file at `path` (MROD_DATABASE_URL
    # too). Never echoed: it may carry a password.
    url: str = field(default="", metadata=check(v.database_url))
    # A file holding the password (first line); else libpq's PGPASSWORD / ~/.pgpass apply.
    password_file: str = field(default="", metadata=check(v.absolute_file))
    # PostgreSQL: seconds a statement (or a connection attempt) of the panel, the CLI or a job
    # may go unanswered before the session is dropped and the work fails as "database
    # unavailable" (the panel's 503). A hung or partitioned server must not hold a request for
    # the kernel's retransmission limit; mrod's statements take milliseconds, a bulk import's
    # a few seconds. (SQLite waits up to 5 s for a writer's lock, then says the same.)
    answer_timeout: float = field(default=30.0, metadata=check(v.positive))


def _host_name() -> str:
    return socket.gethostname().lower().rstrip(".") or "localhost"


@dataclass(frozen=True)
class NodeConfig:
    # This node's name; health, queue and DNS-check readings are stored under it, so
    # nodes sharing one PostgreSQL keep their own (each has its own Postfix and network view).
    # Host-name labels ("mx2" or "mx2.example.net"); default: the machine's host name.
    name: str = field(default_factory=_host_name, metadata=check(v.node_name))
    # Where this node keeps its own files: lookupd's routing snapshot and sync status (on
    # PostgreSQL, what lookupd answers from while the database is gone). "" = the directory of
    # [database] path; relative paths follow the config file. Made at start by lookupd.
    state_dir: str = ""
    # The addresses (or CIDR networks) this node sends mail from, IPv4 and IPv6: what the
    # primary's filters must trust (`mrod trust-kit`). Stored with the node's status so every
    # node and the panel can print the kit for the whole cluster. Empty: not known (the kit says so).
    public_addresses: tuple[str, ...] = field(default=(), metadata=check(v.networks))


@dataclass(frozen=True)
class LookupdConfig:
    # "" disables an endpoint.
    socketmap: str = field(default="127.0.0.1:10101", metadata=check(v.optional_endpoint))
    policy: str = field(default="127.0.0.1:10102", metadata=check(v.optional_endpoint))
    tcp_table: dict[str, str] = field(default_factory=dict, metadata=check(v.tcp_tables))
    # A connection with no request for this long is closed (Postfix reconnects on demand).
    idle_timeout: float = field(default=300.0, metadata=check(v.positive))
    # A request must arrive complete within this long once its first byte has (slow clients).
    request_timeout: float = field(default=10.0, metadata=check(v.positive))
    # Longest a lookup may wait for a locked database before it answers TEMP.
    lookup_deadline: float = field(default=5.0, metadata=check(v.positive))
    max_connections: int = field(default=4000, metadata=check(v.positive))
    # Postfix's recipient_delimiter: the characters that start an address extension.
    recipient_delimiter: str = field(default="+", metadata=check(v.delimiter))
    # master.cf services named in transport answers (STARTTLS/plain, and implicit TLS).
    relay_transport: str = field(default="relay", metadata=check(v.service_name))
    smtps_transport: str = field(default="mrod-smtps", metadata=check(v.service_name))
    # postmaster@ of every relayed domain is accepted, listed or not (RFC 5321 §4.5.1).
    accept_postmaster: bool = True


@dataclass(frozen=True)
class AdminConfig:
    listen: str = field(default="127.0.0.1:8380", metadata=check(v.endpoint))
    # Secure cookie flag: "auto" sets it when the request came over HTTPS or through a
    # trusted proxy that says so (X-Forwarded-Proto: https).
    cookie_secure: str = field(default="auto", metadata=check(v.one_of("auto", "always", "never")))
    trust_proxy: bool = False
    session_hours: float = field(default=12.0, metadata=check(v.positive))
    # Serve HTTPS directly (both set) instead of behind a TLS proxy; paths to PEM files.
    tls_cert: str = ""
    tls_key: str = ""
    # bcrypt cost for panel passwords (2^rounds); tests use 4, production keeps 12.
    bcrypt_rounds: int = field(default=12, metadata=check(v.int_range(4, 16)))
    # Login throttling: this many failures within the window block the IP / the user name.
    login_window_minutes: float = field(default=15.0, metadata=check(v.positive))
    login_max_failures_ip: int = field(default=20, metadata=check(v.positive))
    login_max_failures_user: int = field(default=10, metadata=check(v.positive))
    login_block_minutes: float = field(default=30.0, metadata=check(v.positive))
    # Who must sign in with a TOTP code too — "none", "admins" or "all". A user it
    # applies to who has not enrolled yet can reach only the enrolment page after the password.
    two_factor_required: str = field(default="none", metadata=check(v.one_of(*TWO_FACTOR_MODES)))

    def validate(self, base_dir: Path) -> None:
        """Checks across keys, run by the loader (ValueError: the message names the keys)."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("admin.tls_cert and admin.tls_key: give both, or neither")
        for key in ("tls_cert", "tls_key"):
            value = getattr(self, key)
            if value and not (base_dir / value).is_file():
                raise ValueError(f"admin.{key}: {base_dir / value} is not a file")


@dataclass(frozen=True)
class PolicyConfig:
    """The Postfix policy service (check_policy_service on [lookupd] policy)."""

    # Default queue quota per domain (a domain may set its own); 0: no limit.
    default_quota_messages: int = field(default=0, metadata=check(v.non_negative))
    default_quota_bytes: int = field(default=0, metadata=check(v.non_negative))
    # Recipient verification (recipient policy 'verify'): SMTP callouts to the primary.
    callout_timeout: float = field(default=10.0, metadata=check(v.positive))
    positive_ttl: float = field(default=7 * 86400.0, metadata=check(v.positive))   # known good: long
    negative_ttl: float = field(default=3600.0, metadata=check(v.positive))        # known bad: short
    helo_name: str = "localhost"
    # Envelope sender of callouts ("" = the null sender <>, as Postfix's verify does).
    callout_sender: str = ""
    # PostgreSQL unreachable (docs/cluster.md): "accept" answers DUNNO (pause, quota and verify
    # are not applied until it returns; the lookup maps still decide from their snapshot),
    # "defer" answers DEFER_IF_PERMIT (a 4xx: the sender retries).
    when_database_unreachable: str = field(default="accept", metadata=check(v.one_of("accept", "defer")))
    # Clients (CIDR, IPv4 and IPv6) whose mail a domain in `when_primary_up = defer` mode still
    # accepts while its primary is up: the primary itself, partners (docs/operations.md).
    exempt_networks: tuple[str, ...] = field(default=(), metadata=check(v.networks))


@dataclass(frozen=True)
class BindConfig:
    """The BIND importer (mrod/bindimport): which zones become relay domains, routed how."""

    # Only the periodic run inside `mrod serve`; `mrod import-bind` works either way.
    enabled: bool = False
    interval: float = field(default=3600.0, metadata=check(v.positive))
    sources: tuple[str, ...] = field(default=("named.conf",), metadata=check(v.subset(BIND_SOURCES)))
    named_conf: Path = Path("/etc/bind/named.conf")
    # "auto": named-checkconf -p when installed, else mrod's own parser.
    checkconf: str = field(default="auto", metadata=check(v.one_of("auto", "always", "never")))
    zone_types: tuple[str, ...] = field(default=("primary", "secondary"), metadata=check(v.subset(BIND_ZONE_TYPES)))
    zone_dirs: tuple[str, ...] = ("/var/cache/bind", "/var/lib/bind")
    # Zones never imported: exact names or "*.suffix" (the root zone is never imported).
    skip_zones: tuple[str, ...] = field(
        default=("localhost", "*.localhost", "localhost.localdomain", "*.arpa", "*.invalid"),
        metadata=check(v.zone_patterns))
    catalog_server: str = field(default="127.0.0.1", metadata=check(v.ip_or_empty))
    catalog_port: int = field(default=53, metadata=check(v.port_number))
    catalog_zones: tuple[str, ...] = ()
    strategies: tuple[str, ...] = field(default=("dns-txt", "dns-dom"), metadata=check(v.subset(BIND_STRATEGIES)))
    txt_prefix: str = field(default="mrodxmailrelay=", metadata=check(v.txt_prefix))
    # "" = the system resolver (/etc/resolv.conf).
    resolver: str = field(default="", metadata=check(v.ip_or_empty))
    resolver_port: int = field(default=53, metadata=check(v.port_number))
    dns_timeout: float = field(default=3.0, metadata=check(v.positive))
    dns_concurrency: int = field(default=64, metadata=check(v.positive))
    sub_label: str = field(default="mail", metadata=check(v.dns_label))
    sub_port: int = field(default=25, metadata=check(v.port_number))
    # A domain missing from BIND is disabled at once and deleted after this long.
    grace_hours: float = field(default=168.0, metadata=check(v.non_negative))


@dataclass(frozen=True)
class HealthConfig:
    """Primary health: `mrod serve` probes every relay (banner, EHLO, STARTTLS, latency)."""

    enabled: bool = True
    interval: float = field(default=60.0, metadata=check(v.positive))
    timeout: float = field(default=10.0, metadata=check(v.positive))
    # Hysteresis: this many consecutive failed probes mark a relay down, successes mark it up.
    down_after: int = field(default=3, metadata=check(v.positive))
    up_after: int = field(default=2, metadata=check(v.positive))
    concurrency: int = field(default=20, metadata=check(v.positive))
    helo_name: str = "localhost"
    # Probe history kept this long.
    history_hours: float = field(default=168.0, metadata=check(v.positive))
    # When a relay comes back up, flush the queued mail of its domains at once.
    flush_on_up: bool = True


@dataclass(frozen=True)
class QueueConfig:
    """Reading Postfix's queue (`postqueue -j`): per-domain figures for the panel and the quota."""

    enabled: bool = True
    interval: float = field(default=60.0, metadata=check(v.positive))
    # Longest a postqueue run may take (a huge queue, a hung Postfix).
    timeout: float = field(default=120.0, metadata=check(v.positive))
    # A queue entry (one JSON line) longer than this is skipped and counted as bad.
    max_line_bytes: int = field(default=16 * 1024 * 1024, metadata=check(v.positive))


@dataclass(frozen=True)
class PostfixConfig:
    """Which Postfix instance mrod's queue tools talk to."""

    # Postfix's configuration directory, passed as `-c DIR` ("" = Postfix's default).
    config_dir: str = field(default="", metadata=check(v.absolute_or_empty))
    postqueue: str = "postqueue"
    # How mrod runs postsuper (hold, release, requeue, delete, expire), which only root may:
    # "unix:/run/mrod-postsuper.sock" asks the root-side helper (mrod-postsuper.socket, the
    # Debian package's setting), or a command line, e.g. "sudo -n /usr/sbin/postsuper" for
    # mrod's service user with a sudoers rule (docs/operations.md).
    postsuper: str = field(default="postsuper", metadata=check(v.postsuper))
    # At `mrod serve` start-up, lookup failures in Postfix's log that its smtpd may
    # still cache (mrod.operations.postfixcache); "" = Postfix's maillog_file, else /var/log/mail.log.
    maillog: str = field(default="", metadata=check(v.absolute_or_empty))
    reload_after_outage: bool = False      # true: `postfix reload` when there are some


@dataclass(frozen=True)
class FlushConfig:
    """A primary's return: the careful flush and its circuit breaker (mrod.operations.carefulflush),
    and the pace Postfix delivers at (`mrod postfix-config`: mrod's relay transport's settings)."""

    # Hold a returning primary's backlog, try its first messages' recipients dry, then deliver
    # the rest — or keep it all on hold when the primary refuses them (false: flush at once).
    careful: bool = True
    trial_messages: int = field(default=10, metadata=check(v.positive))
    # Refusals (5xx) among the trial's messages that trip the breaker (scaled down for a shorter trial).
    trip_refusals: int = field(default=5, metadata=check(v.positive))
    # After the release, watch Postfix's log this long (s) for the first trial_messages real
    # deliveries: trip_refusals of them refused with 5xx (after DATA: content filtering, which a
    # dry trial cannot see) hold what is still queued (0: no watch).
    watch_seconds: float = field(default=60.0, metadata=check(v.non_negative))
    # <transport>_destination_concurrency_limit and _destination_rate_delay (s); 0 = Postfix's default.
    concurrency: int = field(default=0, metadata=check(v.non_negative))
    rate_delay: int = field(default=0, metadata=check(v.non_negative))
    # The master.cf transport mrod's relay routes use (Postfix's relay_transport, `relay`).
    transport: str = field(default="relay", metadata=check(v.dns_label))


@dataclass(frozen=True)
class ChecksConfig:
    """DNS checks of every domain's MX set-up (`mrod check`, and periodically in `mrod serve`)."""

    enabled: bool = True
    interval: float = field(default=21600.0, metadata=check(v.positive))
    # This host's names as they appear in domains' MX records.
    mx_names: tuple[str, ...] = field(default=(), metadata=check(v.host_names))
    # This host's addresses (for the mail-loop check); empty: the addresses of mx_names.
    local_addresses: tuple[str, ...] = field(default=(), metadata=check(v.ip_addresses))
    # "" = the system resolver (/etc/resolv.conf).
    resolver: str = field(default="", metadata=check(v.ip_or_empty))
    resolver_port: int = field(default=53, metadata=check(v.port_number))
    timeout: float = field(default=5.0, metadata=check(v.positive))
    concurrency: int = field(default=32, metadata=check(v.positive))


@dataclass(frozen=True)
class RecipientSourcesConfig:
    """Syncing recipient lists from the primaries' directories (mrod.recipientsources)."""

    enabled: bool = True           # false: `mrod serve` syncs none (`mrod recipient-source sync` still does)
    interval: float = field(default=900.0, metadata=check(v.positive))
    # A sync that would remove more than this share of a domain's synced recipients is held
    # until an operator accepts it (`mrod recipient-source accept NAME`).
    max_removal: float = field(default=0.2, metadata=check(v.share))
    # Longest a source may take to answer (connect, bind, query, download), in seconds.
    timeout: float = field(default=60.0, metadata=check(v.positive))


@dataclass(frozen=True)
class MtaStsConfig:
    """MTA-STS and DANE of the domains routed by their own MX (mrod.mtasts; `mrod mta-sts`)."""

    enabled: bool = True
    # How often the job looks for policies due (each is fetched again only when its TXT id
    # changes or its max_age nears).
    interval: float = field(default=3600.0, metadata=check(v.positive))
    # "" = [checks] resolver (and its port). DANE needs a validating resolver (AD bit).
    resolver: str = field(default="", metadata=check(v.ip_or_empty))
    resolver_port: int = field(default=53, metadata=check(v.port_number))
    timeout: float = field(default=10.0, metadata=check(v.positive))
    # PEM CA certificates to trust for https://mta-sts.<domain>/ ("" = the system's).
    ca_file: str = field(default="", metadata=check(v.absolute_or_empty))
    # Answer `dane` for MX hosts with TLSA records under DNSSEC.
    dane: bool = True
    # The HTTPS port of the policy host (443; tests use another).
    https_port: int = field(default=443, metadata=check(v.port_number))


@dataclass(frozen=True)
class MetricsConfig:
    # A standalone Prometheus /metrics endpoint ("host:port"; "" = none; the panel serves
    # /metrics too when it runs).
    listen: str = field(default="", metadata=check(v.optional_endpoint))


@dataclass(frozen=True)
class NotifyEmailConfig:
    """[notify.email]: notices by mail, through the local Postfix's sendmail or an SMTP server."""

    # The operator's addresses: every notice, one digest per round.
    to: tuple[str, ...] = field(default=(), metadata=check(v.mailboxes))
    # Each domain owner's contact address (mrod user set NAME --email) is told about their own
    # domains too (one digest per owner, listing only theirs).
    owners: bool = True
    # Envelope sender and From: ("" = mrod@ this node's name).
    sender: str = field(default="", metadata=check(v.mailbox_or_empty))
    # "" = hand the message to Postfix's sendmail (with [postfix] config_dir); "host:port" =
    # submit it over SMTP to that server instead (no authentication; STARTTLS when offered).
    smtp: str = field(default="", metadata=check(v.smtp_host))
    sendmail: str = "sendmail"
    # Longest one delivery attempt may take.
    timeout: float = field(default=30.0, metadata=check(v.positive))


@dataclass(frozen=True)
class NotifyWebhookConfig:
    """[notify.webhook]: notices as a JSON POST (a `text` field Slack/Mattermost/Matrix hooks show)."""

    url: str = field(default="", metadata=check(v.http_url))      # "" = no webhook
    # A file holding a shared secret (first line): the body is signed with HMAC-SHA256 in the
    # X-Mrod-Signature header ("sha256=<hex>").
    secret_file: str = field(default="", metadata=check(v.absolute_file))
    timeout: float = field(default=10.0, metadata=check(v.positive))

    def validate(self, base_dir: Path) -> None:
        if self.secret_file and not Path(self.secret_file).is_file():
            raise ValueError(f"notify.webhook.secret_file: {self.secret_file} is not a file")


@dataclass(frozen=True)
class NotifyConfig:
    """Notifications (mrod/notify): what `mrod serve` tells the operator and domain owners."""

    enabled: bool = True
    # How often the conditions are read and due messages (and retries) sent.
    interval: float = field(default=60.0, metadata=check(v.positive))
    # One notice per event and subject per this long while the condition lasts (seconds).
    repeat: float = field(default=21600.0, metadata=check(v.positive))
    # A failed delivery is tried again after retry_backoff seconds, doubling up to retry_max,
    # at most max_attempts times in all; then it is marked failed.
    retry_backoff: float = field(default=60.0, metadata=check(v.positive))
    retry_max: float = field(default=3600.0, metadata=check(v.positive))
    max_attempts: int = field(default=8, metadata=check(v.positive))
    # Thresholds (0 = that event is off): a domain's oldest queued message older than
    # queue_age seconds; more than queue_messages messages queued for a domain; mail that
    # Postfix bounces (maximal_queue_lifetime) within expire_within seconds.
    queue_age: float = field(default=3600.0, metadata=check(v.non_negative))
    queue_messages: int = field(default=1000, metadata=check(v.non_negative))
    expire_within: float = field(default=86400.0, metadata=check(v.non_negative))
    # Messages kept in the notification table (days).
    keep_days: float = field(default=90.0, metadata=check(v.positive))
    email: NotifyEmailConfig = field(default_factory=NotifyEmailConfig)
    webhook: NotifyWebhookConfig = field(default_factory=NotifyWebhookConfig)

    def validate(self, base_dir: Path) -> None:
        if self.retry_max < self.retry_backoff:
            raise ValueError("notify.retry_max must be at least notify.retry_backoff")


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    lookupd: LookupdConfig = field(default_factory=LookupdConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    bind: BindConfig = field(default_factory=BindConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    postfix: PostfixConfig = field(default_factory=PostfixConfig)
    flush: FlushConfig = field(default_factory=FlushConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    mta_sts: MtaStsConfig = field(default_factory=MtaStsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    recipient_sources: RecipientSourcesConfig = field(default_factory=RecipientSourcesConfig)
    # Where the config came from (None: defaults) and the directory relative paths start at.
    source: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def state_dir(self) -> Path:
        """This node's state directory: [node] state_dir, else beside [database] path (an
        absolute state_dir stays as it is: ``base_dir / "/x"`` is ``/x``)."""
        if self.node.state_dir:
            return self.base_dir / self.node.state_dir
        return self.database.path.parent


SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Config)[f.name]
    for f in dataclasses.fields(Config)
    if f.name not in ("source", "base_dir")
}
