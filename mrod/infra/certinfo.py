"""What a certificate says about itself — when it expires and which host names it covers —
read with the ``openssl`` command (issue 22.3's certificate findings).

Why the openssl CLI: mrod does not depend on the ``cryptography`` package, and Python's ssl
module decodes a certificate only after it verified it (``getpeercert()``); a relay with ``tls
may``/``encrypt`` is not verified, and Postfix's own certificate is a file. ``openssl x509``
(Debian's ``openssl``, which Postfix's TLS set-up already needs) decodes either; the parse of its
output is pure (``parse``). A DER certificate seen by the health probe is decoded once per
distinct certificate (``_decoded``), not once per probe.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone

TIMEOUT = 10.0
_CACHE_SIZE = 256


class CertUnreadable(Exception):
    """The certificate could not be read or decoded (the message says why, in one line)."""


@dataclass(frozen=True)
class CertInfo:
    not_after: datetime            # UTC
    names: tuple[str, ...]         # DNS names of subjectAltName; the subject CN when it has none

    def covers(self, host: str) -> bool:
        return any(name_matches(name, host) for name in self.names)


def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4: exact (case-insensitive), or a wildcard as the whole leftmost label that
    stands for exactly one label ('*.example.net' covers 'mx.example.net', not 'example.net')."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:] and "." in rest
    return pattern == host


_SUBJECT_CN = re.compile(r"(?:^|,)CN=((?:\\.|[^,])+)")


def parse(text: str) -> CertInfo:
    """The output of ``openssl x509 -noout -enddate -subject -nameopt RFC2253 -ext subjectAltName``."""
    not_after: datetime | None = None
    names: list[str] = []
    common = ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("notAfter="):
            try:
                not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(line[9:].strip()), timezone.utc)
            except ValueError:
                raise CertUnreadable(f"unexpected expiry date {line[9:].strip()!r}") from None
        elif line.startswith("subject="):
            found = _SUBJECT_CN.search(line[8:].strip())
            common = found.group(1).replace("\\", "") if found else ""
        elif "Subject Alternative Name" in line and i + 1 < len(lines):
            names += [item.strip()[4:] for item in lines[i + 1].split(",") if item.strip().startswith("DNS:")]
    if not_after is None:
        raise CertUnreadable("no expiry date in the certificate")
    return CertInfo(not_after, tuple(names) if names else ((common,) if common else ()))


async def _openssl(args: list[str], data: bytes | None) -> str:
    program = shutil.which("openssl")
    if program is None:
        raise CertUnreadable("the openssl command is not installed (apt-get install openssl)")
    proc = await asyncio.create_subprocess_exec(
        program, "x509", *args, "-noout", "-enddate", "-subject", "-nameopt", "RFC2253", "-ext", "subjectAltName",
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CertUnreadable(f"openssl x509 gave no answer within {TIMEOUT:g} s") from None
    if proc.returncode != 0:
        why = err.decode("utf-8", "replace").strip().splitlines()
        raise CertUnreadable(f"openssl cannot read it: {why[0] if why else 'exit ' + str(proc.returncode)}")
    return out.decode("utf-8", "replace")


async def of_file(path: str) -> CertInfo:
    """The first certificate in a PEM file (the server's own, before its chain)."""
    return parse(await _openssl(["-in", path], None))


_decoded: dict[bytes, CertInfo] = {}


async def of_der(der: bytes) -> CertInfo:
    """A certificate as a TLS peer sent it (DER), decoded once per distinct certificate."""
    key = hashlib.sha256(der).digest()
    info = _decoded.get(key)
    if info is None:
        info = parse(await _openssl(["-inform", "DER"], der))
        if len(_decoded) >= _CACHE_SIZE:
            _decoded.clear()
        _decoded[key] = info
    return info


async def seen(peer_cert: bytes | None, cert_error: str | None) -> tuple[bool, CertInfo | None, str | None]:
    """What a TLS handshake showed (mrod.infra.smtp.Dialogue's peer_cert, cert_error): (whether
    there is anything to record, the certificate, why it failed or could not be read)."""
    if peer_cert:
        try:
            return True, await of_der(peer_cert), None
        except CertUnreadable as exc:
            return True, None, f"certificate unreadable: {exc}"[:300]
    if cert_error:
        return True, None, cert_error[:300]
    return False, None, None
