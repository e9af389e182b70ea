"""An LDAP source (OpenLDAP, Active Directory) read with ldap3: ldap:// (optionally StartTLS)
or ldaps://, a bind DN with the password from a file, a paged search of the configured
attributes (``mail``, ``proxyAddresses``…). Runs in a thread."""

from __future__ import annotations

import ssl
import warnings
from typing import Any
from urllib.parse import unquote, urlsplit

# ldap3 2.9 (its last release) uses pyasn1 names that newer pyasn1 deprecates at import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3  # type: ignore[import-untyped]  # ldap3 ships no types
    from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]  # no types either

from mrod.infra.errors import MrodError
from mrod.recipientsources import addresses
from mrod.recipientsources.sources import Source

PAGE = 500


def server(source: Source, timeout: float) -> ldap3.Server:
    """The ldap3 Server of a source: TLS (ldaps:// or StartTLS) always verifies the server's
    certificate and name, against ``ca_file`` when given, else the system's CAs."""
    parts = urlsplit(source.url)
    secure = parts.scheme.lower() == "ldaps"
    tls = None
    if secure or source.starttls:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=source.ca_file or None,
                        version=ssl.PROTOCOL_TLS_CLIENT)
    return ldap3.Server(parts.hostname or "", port=parts.port or (636 if secure else 389), use_ssl=secure, tls=tls,
                        connect_timeout=max(1, int(timeout)), get_info=ldap3.NONE)


def fetch(source: Source, secret: str | None, timeout: float) -> list[str]:
    conn = ldap3.Connection(server(source, timeout), user=source.bind_dn or None, password=secret,
                            receive_timeout=max(1, int(timeout)), read_only=True, raise_exceptions=False,
                            auto_referrals=False)
    try:
        if not conn.open() and conn.closed:
            raise MrodError(f"cannot connect to {source.url}: {conn.result}")
        if source.starttls and not conn.start_tls():
            raise MrodError(f"StartTLS with {source.url} failed: {_said(conn)}")
        if not conn.bind():
            raise MrodError(f"bind as {source.bind_dn or 'anonymous'} refused: {_said(conn)}")
        wanted = (source.attributes or "mail").split(",")
        entries = conn.extend.standard.paged_search(
            source.base or "", source.filter or "(mail=*)", attributes=wanted, paged_size=PAGE, generator=True)
        found: list[str] = []
        for entry in entries:
            if entry.get("type") != "searchResEntry":
                continue
            found.extend(_values(entry.get("raw_attributes", {}), wanted))
        if conn.result and conn.result.get("result") not in (0, None):
            raise MrodError(f"search refused: {_said(conn)}")
        return found
    except LDAPException as exc:
        raise MrodError(f"LDAP {source.url}: {exc}") from None
    finally:
        conn.unbind()


def _values(raw: dict[str, Any], wanted: list[str]) -> list[str]:
    lowered = {k.lower(): v for k, v in raw.items()}
    return addresses.as_text(v for name in wanted for v in lowered.get(name.lower(), []))


def _said(conn: ldap3.Connection) -> str:
    result = conn.result or {}
    return unquote(str(result.get("description") or "")) + (f" ({result['message']})" if result.get("message") else "")
