"""MTA-STS policies as text, and what Postfix is told for them: pure functions, no I/O.

RFC 8461: the ``_mta-sts.<domain>`` TXT record (``v=STSv1; id=<1-32 alphanumerics>``) says a
policy exists and which version it is; the policy file (``version: STSv1``, ``mode``, one or
more ``mx`` patterns, ``max_age``) says which MX hosts a sender may deliver to with a valid
certificate. An ``enforce`` policy becomes Postfix's ``secure`` level with ``match=`` the mx
patterns (``*.example.net`` → ``.example.net``) and ``servername=hostname`` (SNI: the MX name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mrod.infra.enums import STS_MODES, StsMode

MAX_AGE_LIMIT = 31557600        # RFC 8461 §3.2: at most one year
MAX_POLICY_BYTES = 64 * 1024    # §3.3: "SHOULD NOT exceed 64 KiB"
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class PolicyError(ValueError):
    """A TXT record or policy file that is not a valid MTA-STS one; the message says why."""


@dataclass(frozen=True)
class Policy:
    mode: str
    mx: tuple[str, ...]
    max_age: int


def txt_id(texts: list[str]) -> str | None:
    """The policy id of the ``_mta-sts`` TXT strings (each record's strings joined), None when
    none starts with ``v=STSv1``. Several STSv1 records are an error (§3.1: no policy)."""
    found = [t for t in texts if re.match(r"v=STSv1\s*(;|$)", t)]
    if not found:
        return None
    if len(found) > 1:
        raise PolicyError("several v=STSv1 TXT records (RFC 8461 §3.1: then there is no policy)")
    fields: dict[str, str] = {}
    for part in found[0].split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    ident = fields.get("id", "")
    if not _ID.fullmatch(ident):
        raise PolicyError(f"TXT id {ident!r} is not 1-32 letters and digits")
    return ident


def parse(text: str) -> Policy:
    """The policy of a ``.well-known/mta-sts.txt`` body (CRLF or LF lines, ``key: value``)."""
    if len(text.encode("utf-8", "replace")) > MAX_POLICY_BYTES:
        raise PolicyError(f"policy larger than {MAX_POLICY_BYTES} bytes")
    fields: dict[str, str] = {}
    mx: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PolicyError(f"line {line[:60]!r} is not 'key: value'")
        key, value = key.strip(), value.strip()
        if key == "mx":
            mx.append(mx_pattern(value))
        else:
            fields.setdefault(key, value)   # §3.2: the first occurrence counts; unknown keys are ignored
    if fields.get("version") != "STSv1":
        raise PolicyError(f"version {fields.get('version')!r} is not STSv1")
    mode = fields.get("mode", "")
    if mode not in STS_MODES:
        raise PolicyError(f"mode {mode!r} is not one of {', '.join(STS_MODES)}")
    age_text = fields.get("max_age", "")
    if not age_text.isdigit() or len(age_text) > 10:
        raise PolicyError(f"max_age {age_text!r} is not a number of seconds")
    max_age = min(int(age_text), MAX_AGE_LIMIT)
    if mode != StsMode.NONE and not mx:
        raise PolicyError(f"mode {mode} without any mx line")
    return Policy(mode, tuple(dict.fromkeys(mx)), max_age)


def mx_pattern(value: str) -> str:
    """An mx line's pattern, lowercased: a host name, or ``*.`` + a domain (one label wildcard)."""
    text = value.lower().rstrip(".")
    rest = text[2:] if text.startswith("*.") else text
    labels = rest.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise PolicyError(f"mx {value!r} is not a host name or *.domain")
    return text


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: ``*.example.net`` matches exactly one label left of example.net."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, tail = host.partition(".")
        return bool(head) and tail == pattern[2:]
    return host == pattern


def postfix_match(patterns: tuple[str, ...]) -> str:
    """Postfix's ``match=`` list for the patterns: a leading ``.`` matches subdomains (Postfix
    accepts any depth there, RFC 8461 one label: the one place Postfix is looser)."""
    return ":".join(p[1:] if p.startswith("*.") else p for p in patterns)


def answer(policy: Policy | None, dane: bool) -> str | None:
    """The tls_policy answer the cache keeps for a domain routed by its MX: DANE first (RFC
    8461 §2: a sender that validates DANE uses it, not MTA-STS), then an enforce policy;
    None for testing/none or nothing (the domain's own TLS setting stands)."""
    if dane:
        return "dane"
    if policy is not None and policy.mode == StsMode.ENFORCE:
        return f"secure match={postfix_match(policy.mx)} servername=hostname"
    return None
