"""Finding, reading and checking the configuration.

Discovery: ``--config FILE``, else ``$MROD_CONFIG``, else ``./mrod.toml`` if present, else —
for an installed mrod only — ``/etc/mrod/mrod.toml`` if present, else built-in defaults. An
mrod run from a checkout (``make run``, ``make test``, the checkout's ``.venv/bin/mrod``) never
finds the installed service's config by itself: it would work on the service's database. Relative paths in a config file
resolve against that file's directory (the working directory when there is no file), so the
system config uses absolute paths. ``MROD_<SECTION>_<KEY>`` overrides a key
(``MROD_LOOKUPD_TCP_TABLE_<MAP>`` a table entry); any other ``MROD_*`` variable except
``MROD_CONFIG`` is an error, as a misspelt key in the file is. Every check (types, values,
cross-key checks) happens here, so a bad config stops a command before it does anything.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from mrod.infra.config.schema import SECTIONS, Config
from mrod.infra.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/mrod/mrod.toml")
LOCAL_CONFIG = Path("mrod.toml")


def _checkout_root(here: Path) -> Path | None:
    """The source tree this mrod runs from (mrod/infra/config/loader.py three levels down from
    a pyproject.toml naming mrod), or None for an installed mrod (a wheel in site-packages)."""
    root = here.resolve().parents[3]
    try:
        return root if 'name = "mrod"' in (root / "pyproject.toml").read_text(encoding="utf-8") else None
    except OSError:
        return None


# Set for a checkout: discovery then passes over SYSTEM_CONFIG (tests set both).
CHECKOUT = _checkout_root(Path(__file__))
# MROD_* variables that are not settings: the config's path, and what `mrod serve`'s supervisor
# hands its lookupd and panel processes (mrod/cli/supervisor.py, lookupd/sockets.py).
NOT_SETTINGS = frozenset({"MROD_CONFIG", "MROD_LISTEN_FDS", "MROD_READY_FD", "MROD_LOOKUPD_METRICS"})


def find_config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("MROD_CONFIG"):
        return Path(env["MROD_CONFIG"])
    for candidate in (LOCAL_CONFIG,) if CHECKOUT is not None else (LOCAL_CONFIG, SYSTEM_CONFIG):
        try:
            if candidate.is_file():
                return candidate
        except PermissionError:
            # `runuser -u mrod -- mrod …` from a directory mrod may not look into (root's home):
            # no ./mrod.toml there for this user, so on to the system's.
            continue
    return None


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
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory") from None
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        path = path.resolve()
    base = path.parent if path is not None else Path.cwd()
    return from_dict(data, env=env, source=path, base_dir=base)


def describe_source(cfg: Config) -> str:
    """'config FILE' or what was looked for: named by the "run mrod init" hint."""
    if cfg.source is not None:
        return f"config {cfg.source}"
    if CHECKOUT is not None:
        return (f"config: none found (built-in defaults; no ./{LOCAL_CONFIG} in {cfg.base_dir};"
                f" {SYSTEM_CONFIG} is not read by the mrod of the checkout {CHECKOUT})")
    return f"config: none found (built-in defaults; no ./{LOCAL_CONFIG} in {cfg.base_dir}, no {SYSTEM_CONFIG})"


def describe(cfg: Config) -> str:
    """'config FILE, database PATH': the start-up lines of serve/lookupd/admin and `mrod check`."""
    from mrod.infra.engine import Target     # the engine module imports this package's schema

    return f"{describe_source(cfg)}, database {Target.of(cfg.database).describe()}"


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
    _check_environment(env)
    sections = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{name}: must be a table [{name}]")
        sections[name] = _build_section(name, cls, raw, env, base)
    return Config(**sections, source=source, base_dir=base)


def _env_names() -> tuple[set[str], set[str]]:
    """The MROD_* names of every key, and the prefixes of table keys."""
    exact: set[str] = set()
    prefixes: set[str] = set()

    def add(section: str, cls: type) -> None:
        hints = typing.get_type_hints(cls)
        for fld in dataclasses.fields(cls):
            name = _env_name(section, fld.name)
            if dataclasses.is_dataclass(hints[fld.name]):     # a sub-table such as [notify.email]
                add(f"{section}.{fld.name}", hints[fld.name])
            else:
                (prefixes.add(name + "_") if _is_dict(hints[fld.name]) else exact.add(name))

    for section, cls in SECTIONS.items():
        add(section, cls)
    return exact, prefixes


def _env_name(section: str, key: str) -> str:
    """MROD_<SECTION>_<KEY>; a sub-table's keys: MROD_NOTIFY_EMAIL_TO for [notify.email] to."""
    return f"MROD_{section.replace('.', '_')}_{key}".upper()


def _check_environment(env: Mapping[str, str]) -> None:
    exact, prefixes = _env_names()
    for key in sorted(env):
        if not key.startswith("MROD_") or key in NOT_SETTINGS or key in exact:
            continue
        if any(key.startswith(p) and len(key) > len(p) for p in prefixes):
            continue
        near = difflib.get_close_matches(key, sorted(exact | {p + "<MAP>" for p in prefixes}), n=3)
        hint = f"did you mean {', '.join(near)}?" if near else "settings are MROD_<SECTION>_<KEY>"
        raise ConfigError(f"environment variable {key} names no setting ({hint})")


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
        env_name = _env_name(section, name)
        value: Any
        if isinstance(typ, type) and dataclasses.is_dataclass(typ):
            sub = raw.get(name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"{where}: must be a table [{where}]")
            values[name] = _build_section(where, typ, sub, env, base)
            continue
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
    validate = getattr(instance, "validate", None)
    if validate is not None:
        try:
            validate(base)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
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
