"""How a recipient source is read, validated once for the CLI, the panel and the API (pure).

A URL never carries a password (it would be shown, logged and stored): a source's password
comes from ``password_file``. A user name in the URL is kept (the SQL user, the HTTP user).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from mrod.infra import names
from mrod.infra.enums import SOURCE_FORMATS, SOURCE_KINDS, SourceFormat, SourceKind
from mrod.infra.errors import InvalidInput

SCHEMES = {
    SourceKind.LDAP: ("ldap", "ldaps"),
    SourceKind.SQL: ("postgresql", "postgres", "mysql", "mariadb"),
    SourceKind.URL: ("http", "https"),
}
MAX_TEXT = 4000


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str
    url: str
    base: str | None = None
    filter: str | None = None
    attributes: str | None = None
    starttls: bool = False
    ca_file: str | None = None
    bind_dn: str | None = None
    query: str | None = None
    format: str | None = None
    password_file: str | None = None

    def columns(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "url": self.url, "base": self.base, "filter": self.filter,
                "attributes": self.attributes, "starttls": int(self.starttls), "ca_file": self.ca_file,
                "bind_dn": self.bind_dn, "query": self.query, "format": self.format,
                "password_file": self.password_file}


def without_credentials(url: str) -> str:
    """``url`` with any password removed (for showing a URL that came from elsewhere)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


def _text(value: Any, field: str, *, required: bool = False) -> str | None:
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if len(text) > MAX_TEXT or any(ord(c) < 32 and c not in "\t" for c in text):
        raise InvalidInput(field, f"must be one line of at most {MAX_TEXT} characters")
    return text


def _url(value: Any, kind: str) -> str:
    text = _text(value, "url", required=True) or ""
    try:
        parts = urlsplit(text)
        if parts.port == 0:        # .port raises ValueError on a port that is not a number or out of range
            raise ValueError("port 0")
    except ValueError as exc:
        raise InvalidInput("url", f"{without_credentials(text)!r} is not a URL: {exc}") from None
    if parts.scheme.lower() not in SCHEMES[SourceKind(kind)]:
        raise InvalidInput("url", f"a {kind} source takes a {' or '.join(s + '://' for s in SCHEMES[SourceKind(kind)])}"
                           " URL")
    if parts.password is not None:
        raise InvalidInput("url", "holds a password: remove it from the URL and give it in a file"
                           " (--password-file), so it is never shown or logged")
    if not parts.hostname:
        raise InvalidInput("url", "names no host")
    return text


def _file(value: Any, field: str) -> str | None:
    path = _text(value, field)
    if path is None:
        return None
    if not os.path.isabs(path):
        raise InvalidInput(field, f"{path!r} must be an absolute path")
    if not os.path.isfile(path):
        raise InvalidInput(field, f"{path!r} is not a readable file")
    return path


def parse(data: Mapping[str, Any]) -> Spec:
    """A Spec from form/API/CLI fields; InvalidInput naming the field on a bad one."""
    name = names.relay_name(data.get("name"), "name")
    kind = names.choice(str(data.get("kind") or "").strip().lower(), SOURCE_KINDS, "kind")
    url = _url(data.get("url"), kind)
    password_file = _file(data.get("password_file"), "password_file")
    if kind == SourceKind.LDAP:
        attributes = _text(data.get("attributes"), "attributes") or "mail"
        if not all(a.strip() and a.strip().replace("-", "").isalnum() for a in attributes.split(",")):
            raise InvalidInput("attributes", "must be attribute names separated by commas (e.g. mail,proxyAddresses)")
        filter_ = _text(data.get("filter"), "filter") or "(mail=*)"
        if not (filter_.startswith("(") and filter_.endswith(")")):
            raise InvalidInput("filter", "an LDAP filter is written in parentheses, e.g. (objectClass=inetOrgPerson)")
        starttls = str(data.get("starttls") or "").lower() in ("1", "true", "on", "yes")
        if starttls and url.lower().startswith("ldaps:"):
            raise InvalidInput("starttls", "an ldaps:// URL is TLS already; StartTLS is for ldap://")
        return Spec(name, kind, url, password_file=password_file, base=_text(data.get("base"), "base", required=True),
                    filter=filter_, attributes=",".join(a.strip() for a in attributes.split(",")), starttls=starttls,
                    ca_file=_file(data.get("ca_file"), "ca_file"), bind_dn=_text(data.get("bind_dn"), "bind_dn"))
    if kind == SourceKind.SQL:
        query = _text(data.get("query"), "query", required=True) or ""
        if not query.lower().lstrip("( ").startswith(("select", "with")):
            raise InvalidInput("query", "must be a SELECT whose first column is an address")
        return Spec(name, kind, url, password_file=password_file, query=query)
    fmt = names.choice(str(data.get("format") or SourceFormat.JSON).strip().lower(), SOURCE_FORMATS, "format")
    return Spec(name, kind, url, password_file=password_file, format=fmt, ca_file=_file(data.get("ca_file"), "ca_file"))
