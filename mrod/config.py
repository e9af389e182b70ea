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

from . import endpoints
from .errors import ConfigError

ROUTING_MAPS = ("relay_domains", "transport", "relay_recipients", "tls_policy")


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


def check(fn: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata: a validator run after type conversion."""
    return {"check": fn}


@dataclass(frozen=True)
class DatabaseConfig:
    path: Path = Path("var/mrod.db")


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


@dataclass(frozen=True)
class AdminConfig:
    listen: str = field(default="127.0.0.1:8380", metadata=check(_endpoint))
    # Secure cookie flag: "auto" sets it when the request came over HTTPS or through a
    # trusted proxy that says so (X-Forwarded-Proto: https).
    cookie_secure: str = field(default="auto", metadata=check(_cookie_secure))
    trust_proxy: bool = False
    session_hours: float = field(default=12.0, metadata=check(_positive))


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


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    lookupd: LookupdConfig = field(default_factory=LookupdConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
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
