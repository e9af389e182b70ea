"""TOML configuration: typed, validated at load time, with MROD_* environment overrides.

Lookup order: ``--config FILE``, else ``$MROD_CONFIG``, else ``./mrod.toml`` if present, else
built-in defaults. Every key has a default here; ``MROD_<SECTION>_<KEY>`` overrides a key
(``MROD_LOOKUPD_TCP_TABLE_<MAP>`` for a table entry). Relative paths are taken relative to
the config file's directory (the working directory when there is no file).
A bad file or value is a ConfigError whose message names the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from mrod.infra import endpoints
from mrod.infra.errors import ConfigError

from mrod.infra.enums import MAPS as ROUTING_MAPS  # issue 9.5: enumerations defined once


def _endpoint(value: str) -> str:
    endpoints.parse(value)
    return value


def _optional_endpoint(value: str) -> str:
    return value if value == "" else _endpoint(value)


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _delimiter(value: str) -> str:
    if len(value) > 8 or any(c.isalnum() or c.isspace() or c == "@" for c in value):
        raise ValueError("must be a few punctuation characters such as '+' or '+-'")
    return value


def _service_name(value: str) -> str:
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError("must be a master.cf service name such as 'relay'")
    return value


def _tcp_tables(value: dict[str, str]) -> dict[str, str]:
    for name, ep in value.items():
        if name not in ROUTING_MAPS:
            raise ValueError(f"unknown map {name!r} (maps: {', '.join(ROUTING_MAPS)})")
        try:
            endpoints.parse(ep)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return value


def _cookie_secure(value: str) -> str:
    if value not in ("auto", "always", "never"):
        raise ValueError("must be 'auto', 'always' or 'never'")
    return value


def _bcrypt_rounds(value: int) -> int:
    if not 4 <= value <= 16:
        raise ValueError("must be from 4 to 16")
    return value


def check(fn: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata: a validator run after type conversion."""
    return {"check": fn}


# --- [database] engine keys (issue 11): url selects PostgreSQL, path keeps SQLite. ---------
def _database_url(value: str) -> str:
    # Never echo the value: it may carry a password.
    if value and not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a postgresql:// URL (or empty for SQLite at database.path)")
    return value


def _absolute_file(value: str) -> str:
    if value and not Path(value).is_absolute():
        raise ValueError(f"must be an absolute path, got {value!r}")
    return value


@dataclass(frozen=True)
class DatabaseConfig:
    path: Path = Path("var/mrod.db")
    # "postgresql://user@host:port/db?sslmode=verify-full": when set, every part of mrod uses
    # this PostgreSQL database instead of the SQLite file at `path` (MROD_DATABASE_URL too).
    url: str = field(default="", metadata=check(_database_url))
    # A file holding the password (first line); else libpq's PGPASSWORD / ~/.pgpass apply.
    password_file: str = field(default="", metadata=check(_absolute_file))
# --- end of issue 11's [database] keys ----------------------------------------------------


@dataclass(frozen=True)
class LookupdConfig:
    # "" disables an endpoint.
    socketmap: str = field(default="127.0.0.1:10101", metadata=check(_optional_endpoint))
    policy: str = field(default="127.0.0.1:10102", metadata=check(_optional_endpoint))
    tcp_table: dict[str, str] = field(default_factory=dict, metadata=check(_tcp_tables))
    # A connection with no request for this long is closed (Postfix reconnects on demand).
    idle_timeout: float = field(default=300.0, metadata=check(_positive))
    # A request must arrive complete within this long once its first byte has (slow clients).
    request_timeout: float = field(default=10.0, metadata=check(_positive))
    # Longest a lookup may wait for a locked database before it answers TEMP.
    lookup_deadline: float = field(default=5.0, metadata=check(_positive))
    max_connections: int = field(default=4000, metadata=check(_positive))
    # Postfix's recipient_delimiter: the characters that start an address extension.
    recipient_delimiter: str = field(default="+", metadata=check(_delimiter))
    # master.cf services named in transport answers (STARTTLS/plain, and implicit TLS).
    relay_transport: str = field(default="relay", metadata=check(_service_name))
    smtps_transport: str = field(default="mrod-smtps", metadata=check(_service_name))
    # issue 14: postmaster@ of every relayed domain is accepted, listed or not (RFC 5321 §4.5.1).
    accept_postmaster: bool = True


@dataclass(frozen=True)
class AdminConfig:
    listen: str = field(default="127.0.0.1:8380", metadata=check(_endpoint))
    # Secure cookie flag: "auto" sets it when the request came over HTTPS or through a
    # trusted proxy that says so (X-Forwarded-Proto: https).
    cookie_secure: str = field(default="auto", metadata=check(_cookie_secure))
    trust_proxy: bool = False
    session_hours: float = field(default=12.0, metadata=check(_positive))
    # Serve HTTPS directly (both set) instead of behind a TLS proxy; paths to PEM files.
    tls_cert: str = ""
    tls_key: str = ""
    # bcrypt cost for panel passwords (2^rounds); tests use 4, production keeps 12.
    bcrypt_rounds: int = field(default=12, metadata=check(_bcrypt_rounds))
    # Login throttling: this many failures within the window block the IP / the user name.
    login_window_minutes: float = field(default=15.0, metadata=check(_positive))
    login_max_failures_ip: int = field(default=20, metadata=check(_positive))
    login_max_failures_user: int = field(default=10, metadata=check(_positive))
    login_block_minutes: float = field(default=30.0, metadata=check(_positive))
    # Issue 13: who must sign in with a TOTP code too — "none", "admins" or "all". A user it
    # applies to who has not enrolled yet can reach only the enrolment page after the password.
    two_factor_required: str = field(default="none", metadata=check(
        lambda value: _one_of("none", "admins", "all")(value)))


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


@dataclass(frozen=True)
class PolicyConfig:
    """The Postfix policy service (check_policy_service on [lookupd] policy)."""

    # Default queue quota per domain (a domain may set its own); 0: no limit.
    default_quota_messages: int = field(default=0, metadata=check(_non_negative))
    default_quota_bytes: int = field(default=0, metadata=check(_non_negative))
    # Recipient verification (recipient policy 'verify'): SMTP callouts to the primary.
    callout_timeout: float = field(default=10.0, metadata=check(_positive))
    positive_ttl: float = field(default=7 * 86400.0, metadata=check(_positive))   # known good: long
    negative_ttl: float = field(default=3600.0, metadata=check(_positive))        # known bad: short
    helo_name: str = "localhost"
    # Envelope sender of callouts ("" = the null sender <>, as Postfix's verify does).
    callout_sender: str = ""


BIND_SOURCES = ("named.conf", "zone-dir", "catalog")
BIND_ZONE_TYPES = ("primary", "master", "secondary", "slave")
BIND_STRATEGIES = ("dns-txt", "dns-dom", "dns-sub")


def _subset(allowed: tuple[str, ...], *, empty_ok: bool = False) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    def checked(value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if item not in allowed:
                raise ValueError(f"unknown value {item!r} (allowed: {', '.join(allowed)})")
        if len(set(value)) != len(value):
            raise ValueError("lists a value twice")
        if not value and not empty_ok:
            raise ValueError(f"must name at least one of {', '.join(allowed)}")
        return value
    return checked


def _one_of(*allowed: str) -> Callable[[str], str]:
    def checked(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)}")
        return value
    return checked


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a port from 1 to 65535")
    return value


def _ip_or_empty(value: str) -> str:
    if value:
        import ipaddress
        ipaddress.ip_address(value)   # ValueError names the bad text
    return value


def _zone_patterns(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        name = item[2:] if item.startswith("*.") else item
        if not name or any(c.isspace() or c in "*/\\" for c in name):
            raise ValueError(f"{item!r} must be a zone name or '*.suffix'")
    return tuple(item.lower().rstrip(".") for item in value)


def _dns_label(value: str) -> str:
    if not value or len(value) > 63 or not all(c.isalnum() or c == "-" for c in value) \
            or value.startswith("-") or value.endswith("-"):
        raise ValueError(f"{value!r} must be one DNS label such as 'mail'")
    return value.lower()


def _txt_prefix(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be non-empty text without spaces, e.g. 'mrodxmailrelay='")
    return value


@dataclass(frozen=True)
class BindConfig:
    """The BIND importer (mrod/bindimport): which zones become relay domains, routed how."""

    # Only the periodic run inside `mrod serve`; `mrod import-bind` works either way.
    enabled: bool = False
    interval: float = field(default=3600.0, metadata=check(_positive))
    sources: tuple[str, ...] = field(default=("named.conf",), metadata=check(_subset(BIND_SOURCES)))
    named_conf: Path = Path("/etc/bind/named.conf")
    # "auto": named-checkconf -p when installed, else mrod's own parser.
    checkconf: str = field(default="auto", metadata=check(_one_of("auto", "always", "never")))
    zone_types: tuple[str, ...] = field(default=("primary", "secondary"), metadata=check(_subset(BIND_ZONE_TYPES)))
    zone_dirs: tuple[str, ...] = ("/var/cache/bind", "/var/lib/bind")
    # Zones never imported: exact names or "*.suffix" (the root zone is never imported).
    skip_zones: tuple[str, ...] = field(
        default=("localhost", "*.localhost", "localhost.localdomain", "*.arpa", "*.invalid"),
        metadata=check(_zone_patterns))
    catalog_server: str = field(default="127.0.0.1", metadata=check(_ip_or_empty))
    catalog_port: int = field(default=53, metadata=check(_port_number))
    catalog_zones: tuple[str, ...] = ()
    strategies: tuple[str, ...] = field(default=("dns-txt", "dns-dom"), metadata=check(_subset(BIND_STRATEGIES)))
    txt_prefix: str = field(default="mrodxmailrelay=", metadata=check(_txt_prefix))
    # "" = the system resolver (/etc/resolv.conf).
    resolver: str = field(default="", metadata=check(_ip_or_empty))
    resolver_port: int = field(default=53, metadata=check(_port_number))
    dns_timeout: float = field(default=3.0, metadata=check(_positive))
    dns_concurrency: int = field(default=64, metadata=check(_positive))
    sub_label: str = field(default="mail", metadata=check(_dns_label))
    sub_port: int = field(default=25, metadata=check(_port_number))
    # A domain missing from BIND is disabled at once and deleted after this long.
    grace_hours: float = field(default=168.0, metadata=check(_non_negative))


def _host_names(value: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for item in value:
        name = item.strip().lower().rstrip(".")
        labels = name.split(".")
        if len(labels) < 2 or not all(0 < len(lb) <= 63 and all(c.isalnum() or c in "-_" for c in lb)
                                      for lb in labels):
            raise ValueError(f"{item!r} is not a host name such as 'mx2.example.net'")
        out.append(name)
    return tuple(out)


def _ip_addresses(value: tuple[str, ...]) -> tuple[str, ...]:
    import ipaddress
    return tuple(str(ipaddress.ip_address(item.strip())) for item in value)


def _absolute_or_empty(value: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError("must be an absolute directory such as '/etc/postfix' (or \"\" for Postfix's own)")
    return value


@dataclass(frozen=True)
class HealthConfig:
    """Primary health: `mrod serve` probes every relay (banner, EHLO, STARTTLS, latency)."""

    enabled: bool = True
    interval: float = field(default=60.0, metadata=check(_positive))
    timeout: float = field(default=10.0, metadata=check(_positive))
    # Hysteresis: this many consecutive failed probes mark a relay down, successes mark it up.
    down_after: int = field(default=3, metadata=check(_positive))
    up_after: int = field(default=2, metadata=check(_positive))
    concurrency: int = field(default=20, metadata=check(_positive))
    helo_name: str = "localhost"
    # Probe history kept this long.
    history_hours: float = field(default=168.0, metadata=check(_positive))
    # When a relay comes back up, flush the queued mail of its domains at once.
    flush_on_up: bool = True


@dataclass(frozen=True)
class QueueConfig:
    """Reading Postfix's queue (`postqueue -j`): per-domain figures for the panel and the quota."""

    enabled: bool = True
    interval: float = field(default=60.0, metadata=check(_positive))
    # Longest a postqueue run may take (a huge queue, a hung Postfix).
    timeout: float = field(default=120.0, metadata=check(_positive))
    # A queue entry (one JSON line) longer than this is skipped and counted as bad.
    max_line_bytes: int = field(default=16 * 1024 * 1024, metadata=check(_positive))


@dataclass(frozen=True)
class PostfixConfig:
    """Which Postfix instance mrod's queue tools talk to."""

    # Postfix's configuration directory, passed as `-c DIR` ("" = Postfix's default).
    config_dir: str = field(default="", metadata=check(_absolute_or_empty))
    postqueue: str = "postqueue"
    # issue 14: at `mrod serve` start-up, lookup failures in Postfix's log that its smtpd may
    # still cache (mrod.operations.postfixcache); "" = Postfix's maillog_file, else /var/log/mail.log.
    maillog: str = field(default="", metadata=check(_absolute_or_empty))
    reload_after_outage: bool = False      # true: `postfix reload` when there are some


@dataclass(frozen=True)
class ChecksConfig:
    """DNS checks of every domain's MX set-up (`mrod check`, and periodically in `mrod serve`)."""

    enabled: bool = True
    interval: float = field(default=21600.0, metadata=check(_positive))
    # This host's names as they appear in domains' MX records.
    mx_names: tuple[str, ...] = field(default=(), metadata=check(_host_names))
    # This host's addresses (for the mail-loop check); empty: the addresses of mx_names.
    local_addresses: tuple[str, ...] = field(default=(), metadata=check(_ip_addresses))
    # "" = the system resolver (/etc/resolv.conf).
    resolver: str = field(default="", metadata=check(_ip_or_empty))
    resolver_port: int = field(default=53, metadata=check(_port_number))
    timeout: float = field(default=5.0, metadata=check(_positive))
    concurrency: int = field(default=32, metadata=check(_positive))


@dataclass(frozen=True)
class MetricsConfig:
    # A standalone Prometheus /metrics endpoint ("host:port"; "" = none; the panel serves
    # /metrics too when it runs).
    listen: str = field(default="", metadata=check(_optional_endpoint))


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    lookupd: LookupdConfig = field(default_factory=LookupdConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    bind: BindConfig = field(default_factory=BindConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    postfix: PostfixConfig = field(default_factory=PostfixConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # Where the config came from (None: defaults) and the directory relative paths start at.
    source: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)


SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Config)[f.name]
    for f in dataclasses.fields(Config)
    if f.name not in ("source", "base_dir")
}


def find_config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("MROD_CONFIG"):
        return Path(env["MROD_CONFIG"])
    local = Path("mrod.toml")
    return local if local.is_file() else None


def load(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    path = find_config_path(explicit, env)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    base = path.resolve().parent if path is not None else Path.cwd()
    return from_dict(data, env=env, source=path, base_dir=base)


def from_dict(
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: Path | None = None,
    base_dir: Path | None = None,
) -> Config:
    env = {} if env is None else env
    base = base_dir or Path.cwd()
    for name in data:
        if name not in SECTIONS:
            raise ConfigError(f"unknown section [{name}] (known: {', '.join(SECTIONS)})")
    sections = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{name}: must be a table [{name}]")
        sections[name] = _build_section(name, cls, raw, env, base)
    return Config(**sections, source=source, base_dir=base)


def _build_section(section: str, cls: type, raw: Mapping[str, Any], env: Mapping[str, str], base: Path) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key} (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    for name, fld in known.items():
        where = f"{section}.{name}"
        typ = hints[name]
        env_name = f"MROD_{section}_{name}".upper()
        value: Any
        try:
            if _is_dict(typ):
                value = dict(raw.get(name, {}))
                if not all(isinstance(v, str) for v in value.values()):
                    raise ValueError("every value must be a string")
                prefix = env_name + "_"
                for ekey, evalue in env.items():
                    if ekey.startswith(prefix) and len(ekey) > len(prefix):
                        value[ekey[len(prefix):].lower()] = evalue
            elif env_name in env:
                value = _from_env(env[env_name], typ)
            elif name in raw:
                value = _convert(raw[name], typ)
            else:
                continue
            if typ is Path:
                value = value if value.is_absolute() else base / value
            if "check" in fld.metadata:
                value = fld.metadata["check"](value)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            origin = env_name if env_name in env else where
            raise ConfigError(f"{origin}: {exc}") from None
        values[name] = value
    instance = cls(**values)
    # Defaults for paths are relative too.
    for name, typ in hints.items():
        current = getattr(instance, name)
        if typ is Path and not current.is_absolute():
            instance = dataclasses.replace(instance, **{name: base / current})
    return instance


def _is_dict(typ: Any) -> bool:
    return typing.get_origin(typ) is dict


def _convert(value: Any, typ: Any) -> Any:
    if typ is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected a whole number, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if typ is Path:
        if not isinstance(value, str) or not value:
            raise TypeError(f"expected a path, got {value!r}")
        return Path(value)
    if typing.get_origin(typ) in (list, tuple) or isinstance(typ, types.GenericAlias):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"expected a list of strings, got {value!r}")
        return tuple(value)
    raise TypeError(f"unsupported setting type {typ!r}")  # a bug in a section definition


def _from_env(text: str, typ: Any) -> Any:
    if typ is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if typ is int:
        return int(text)
    if typ is float:
        return float(text)
    if typ is Path:
        return Path(text)
    if typ is str:
        return text
    return tuple(part.strip() for part in text.split(",") if part.strip())
