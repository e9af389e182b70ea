"""Certificate findings of the DNS checks (issue 22.3): is the backup itself trusted, and will
the relays' certificates hold?

* ``own-cert-*`` — Postfix's own certificate (``smtpd_tls_cert_file``, else the first of
  ``smtpd_tls_chain_files``, read with ``postconf`` from [postfix] config_dir) must cover every
  one of this host's MX names ([checks] mx_names): a sender that verifies (MTA-STS ``enforce``,
  DANE, ``smtp_tls_security_level = secure``) refuses a name it does not cover. It must not
  expire within ``EXPIRY_WARNING`` (warning) nor be expired (error). These are about this node,
  not a domain: stored in ``host_check`` (migration 0013), one row per node, and shown above
  the domains on the DNS checks page and by ``mrod check``.
* ``relay-cert-*`` — a relay's certificate, as this node's health probe last saw it when it
  completed STARTTLS or implicit TLS (mrod.operations.health stores it with relay_health):
  expiring within ``EXPIRY_WARNING`` or expired, or — under ``tls verify``/``secure``, where
  Postfix checks it — not covering the relay's host (or failing verification for another
  reason). Added to the findings of every domain routed through that relay.

Certificates are decoded by mrod.infra.certinfo (the openssl command).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any

from mrod.infra import certinfo, db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import CHECK_STATUSES, TlsLevel
# checks imports this module (its run() adds these findings): only module attributes are used here.
from mrod.operations import checks

EXPIRY_WARNING = timedelta(days=14)
POSTCONF_TIMEOUT = 10.0
VERIFIED = (TlsLevel.VERIFY, TlsLevel.SECURE)


def _expiry(what: str, not_after: datetime, now: datetime, fix: str) -> checks.Finding | None:
    left = not_after - now
    when = not_after.strftime("%Y-%m-%d %H:%M UTC")
    if left <= timedelta(0):
        return checks.Finding("error", "expired", f"{what} expired on {when}", fix)
    if left <= EXPIRY_WARNING:
        return checks.Finding("warning", "expires-soon", f"{what} expires on {when}, in {left.days} days", fix)
    return None


# -- Postfix's own certificate ----------------------------------------------------------------------


def own_findings(cert_file: str, cert: certinfo.CertInfo | None, problem: str, mx_names: tuple[str, ...],
                 now: datetime) -> list[checks.Finding]:
    """What is wrong with this host's own certificate (pure)."""
    if not cert_file:
        return [checks.Finding("warning", "own-cert-missing", "Postfix has no certificate (smtpd_tls_cert_file and "
                        "smtpd_tls_chain_files are empty): senders cannot use STARTTLS with this backup MX",
                        "set smtpd_tls_cert_file and smtpd_tls_key_file (or smtpd_tls_chain_files) to a certificate "
                        "for this host's MX names, and smtpd_tls_security_level = may")]
    if cert is None:
        return [checks.Finding("warning", "own-cert-unreadable", f"Postfix's certificate {cert_file} cannot be read: "
                        f"{problem}", f"check {cert_file} (a PEM certificate readable by mrod's user)")]
    found = []
    expiry = _expiry(f"Postfix's certificate {cert_file}", cert.not_after, now,
                     "renew it (e.g. certbot renew) and run `postfix reload`")
    if expiry is not None:
        found.append(checks.Finding(expiry.level, f"own-cert-{expiry.code}", expiry.message, expiry.fix))
    missing = [name for name in mx_names if not cert.covers(name)]
    if missing:
        found.append(checks.Finding("error", "own-cert-name", f"Postfix's certificate {cert_file} covers "
                             f"{', '.join(cert.names) or 'no host name'}, not this host's MX name "
                             f"{', '.join(missing)}: senders that verify (MTA-STS enforce, DANE) refuse to "
                             "deliver here", f"get a certificate that lists {', '.join(missing)} (subjectAltName) "
                             "and point smtpd_tls_cert_file at it"))
    return found


async def _postconf(cfg: Config, name: str) -> str:
    program = shutil.which("postconf") or "/usr/sbin/postconf"
    where = ["-c", cfg.postfix.config_dir] if cfg.postfix.config_dir else []
    proc = await asyncio.create_subprocess_exec(program, *where, "-h", name, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), POSTCONF_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise OSError(f"postconf gave no answer within {POSTCONF_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        raise OSError(err.decode("utf-8", "replace").strip() or f"postconf exited {proc.returncode}")
    return out.decode("utf-8", "replace").strip()


async def own_certificate(cfg: Config) -> list[checks.Finding]:
    """Read Postfix's certificate setting and the certificate, and judge it."""
    try:
        cert_file = await _postconf(cfg, "smtpd_tls_cert_file")
        if not cert_file:       # Postfix ≥ 3.4: key and chain in one list of files, the first holds the cert
            cert_file = next(iter((await _postconf(cfg, "smtpd_tls_chain_files")).replace(",", " ").split()), "")
    except OSError as exc:
        return [checks.Finding("warning", "own-cert-postconf", f"Postfix's TLS settings cannot be read: {exc}",
                        "check [postfix] config_dir and that postconf is installed")]
    cert, problem = None, ""
    if cert_file:
        try:
            cert = await certinfo.of_file(cert_file)
        except certinfo.CertUnreadable as exc:
            problem = str(exc)
    return own_findings(cert_file, cert, problem, cfg.checks.mx_names, datetime.now(timezone.utc))


async def check_host(cfg: Config, conn: Connection) -> list[checks.Finding]:
    """This node's own findings, stored as its host_check row."""
    findings = await own_certificate(cfg)
    status = CHECK_STATUSES[max((checks.LEVELS[f.level] for f in findings), default=0)]
    async with db.transaction(conn):
        await conn.execute(
            "INSERT INTO host_check (node, status, findings, checked_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (node) DO UPDATE SET status = excluded.status, findings = excluded.findings,"
            " checked_at = excluded.checked_at",
            (cfg.node.name, status, json.dumps([asdict(f) for f in findings]), db.now()))
    return findings


async def host_results(conn: Connection) -> list[dict[str, Any]]:
    """Every node's last own findings, by node."""
    async with conn.execute("SELECT node, status, findings, checked_at FROM host_check ORDER BY node") as cur:
        return [{"node": r[0], "status": r[1], "findings": json.loads(r[2]), "checked_at": r[3]}
                for r in await cur.fetchall()]


# -- the relays' certificates -----------------------------------------------------------------------


def relay_findings(relay: dict[str, Any], now: datetime) -> list[checks.Finding]:
    """What is wrong with the certificate a relay showed this node's health probe (pure).
    ``relay``: name, host, tls, cert_not_after (stamp), cert_names (space-separated), cert_error."""
    name, host, tls = relay["name"], relay["host"], relay["tls"]
    found = []
    verified = tls in VERIFIED
    if relay.get("cert_error") and verified:
        found.append(checks.Finding("error", "relay-cert-verify", f"relay {name}'s certificate fails verification "
                             f"(tls {tls}): {relay['cert_error']}; Postfix defers all mail for its domains",
                             f"install a certificate for {host} from a CA this host trusts on the primary, or "
                             f"lower relay {name}'s tls (`mrod relay set {name} --tls encrypt`)"))
    if not relay.get("cert_not_after"):
        return found
    names = tuple((relay.get("cert_names") or "").split())
    cert = certinfo.CertInfo(db.parse_stamp(relay["cert_not_after"]), names)
    fix = f"renew the certificate of {host} (the primary's) before it expires"
    expiry = _expiry(f"relay {name}'s certificate ({host})", cert.not_after, now, fix)
    if expiry is not None:
        level = expiry.level if verified else "warning"     # unverified (may/encrypt): Postfix still delivers
        found.append(checks.Finding(level, f"relay-cert-{expiry.code}", expiry.message, expiry.fix))
    if verified and not cert.covers(host) and not relay.get("cert_error"):
        found.append(checks.Finding("error", "relay-cert-name", f"relay {name}'s certificate covers "
                             f"{', '.join(names) or 'no host name'}, not {host}: with tls {tls} Postfix defers "
                             "all mail for its domains", f"give {host} a certificate for that name, or point relay "
                             f"{name} at a name the certificate lists"))
    return found


async def store_relay_certificate(conn: Connection, node: str, relay_id: int, cert: certinfo.CertInfo | None,
                                  error: str | None) -> None:
    """The certificate a relay showed this node's health probe (or why it failed verification),
    beside the relay's state in relay_health (migration 0013); called inside the probe's write."""
    await conn.execute(
        "UPDATE relay_health SET cert_not_after = ?, cert_names = ?, cert_error = ? WHERE node = ? AND relay_id = ?",
        (db.stamp(cert.not_after) if cert else None, " ".join(cert.names) if cert else None, error, node, relay_id))


async def relay_certificates(conn: Connection, node: str) -> dict[int, dict[str, Any]]:
    """relay id -> the relay and the certificate this node's probe last saw, for relays seen with TLS."""
    async with conn.execute(
        "SELECT r.id, r.name, r.host, r.tls, h.cert_not_after, h.cert_names, h.cert_error FROM relay r"
        " JOIN relay_health h ON h.relay_id = r.id AND h.node = ?"
        " WHERE h.cert_not_after IS NOT NULL OR h.cert_error IS NOT NULL", (node,)) as cur:
        rows = await cur.fetchall()
    keys = ("id", "name", "host", "tls", "cert_not_after", "cert_names", "cert_error")
    return {r[0]: dict(zip(keys, r, strict=True)) for r in rows}
