"""Member zones of a catalog zone (RFC 9432, BIND 9.18 ``catalog-zones``), fetched by AXFR.

A catalog holds ``version.<catalog> TXT "2"`` and, per member, ``<unique-id>.zones.<catalog>
PTR <member>.``; everything else (group/coo properties, extensions) does not name a member.
BIND 9.18 also reads version "1" catalogs (the draft), so they are read here too.
Blocking network I/O bounded by ``lifetime``: call from a thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone

from mrod.infra.errors import MrodError

SUPPORTED_VERSIONS = ("1", "2")


class CatalogError(MrodError):
    """The catalog could not be fetched or is not a catalog: the run stops, changing nothing."""


@dataclass
class Catalog:
    zone: str
    members: list[str] = field(default_factory=list)     # member names as in the PTR targets
    warnings: list[str] = field(default_factory=list)


def fetch(server: str, port: int, catalog: str, lifetime: float) -> Catalog:
    """AXFR ``catalog`` from ``server``:``port`` and read its members."""
    where = f"catalog zone {catalog} from {server} port {port}"
    try:
        origin = dns.name.from_text(catalog)
        zone = dns.zone.Zone(origin)
        dns.query.inbound_xfr(server, zone, port=port, timeout=lifetime, lifetime=lifetime)
    except dns.xfr.TransferError as exc:
        raise CatalogError(f"{where}: transfer refused ({dns.rcode.to_text(exc.rcode)}); "
                           "the server must allow-transfer to this host") from None
    except dns.exception.Timeout:
        raise CatalogError(f"{where}: no answer within {lifetime:g}s") from None
    except (OSError, EOFError) as exc:
        raise CatalogError(f"{where}: {getattr(exc, 'strerror', None) or exc or type(exc).__name__}") from None
    except dns.exception.DNSException as exc:
        raise CatalogError(f"{where}: {exc}") from None
    return members(zone, where)


def members(zone: dns.zone.Zone, where: str = "catalog") -> Catalog:
    """The member zones of a transferred catalog zone."""
    origin = zone.origin
    if origin is None:  # only a Zone made without one; a transfer always has it
        raise CatalogError(f"{where}: the zone has no origin")
    result = Catalog(origin.to_text(omit_final_dot=True))
    if zone.get_rdataset(origin, "SOA") is None:
        raise CatalogError(f"{where}: the transfer held no SOA record (empty or not a zone)")
    version = zone.get_rdataset(dns.name.from_text("version", origin), "TXT")
    values = {b"".join(rd.strings).decode("ascii", "replace") for rd in version} if version else set()
    if len(values) != 1 or next(iter(values)) not in SUPPORTED_VERSIONS:
        raise CatalogError(
            f"{where}: not a catalog zone (version.{result.zone} TXT must be one of "
            f"{', '.join(SUPPORTED_VERSIONS)}; found {sorted(values) or 'none'})")
    zones_label = dns.name.from_text("zones", origin)
    seen: dict[str, str] = {}
    for name, node in zone.nodes.items():
        absolute = name.derelativize(origin)
        # Members are exactly one label below zones.<catalog>.
        if len(absolute) != len(zones_label) + 1 or not absolute.is_subdomain(zones_label):
            continue
        ptrs = node.get_rdataset(zone.rdclass, dns.rdatatype.PTR)
        if ptrs is None:
            continue
        unique_id = name.labels[0].decode("ascii", "replace")
        if len(ptrs) != 1:
            # RFC 9432 §4.1: a member node with several PTRs is broken; BIND ignores it.
            result.warnings.append(f"{where}: member {unique_id} has {len(ptrs)} PTR records; ignored")
            continue
        target = next(iter(ptrs)).target.to_text(omit_final_dot=True)
        if target in seen:
            result.warnings.append(f"{where}: {target} is listed twice (ids {seen[target]}, {unique_id})")
            continue
        seen[target] = unique_id
        result.members.append(target)
    result.members.sort()
    return result
