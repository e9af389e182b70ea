"""Zone names as BIND reads them: master-file escapes decoded, then judged as mail domains.

In named.conf (and in ``named-checkconf -l``/``-p`` output, in catalog members, in zone-file
names) a zone name is master-file text: ``\\DDD`` is the byte with decimal value DDD and
``\\X`` is X itself. ``named`` serves the decoded name, so ``ex\\097mple.com`` is
``example.com`` and ``a\\046b.example`` is a two-label name whose first label holds a dot —
something no mail domain can be. dnspython's name parser knows these escapes; it is given
the text as bytes so that, like BIND, it takes other bytes literally (no IDNA on the way in).
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name

from mrod.infra import names
from mrod.infra.errors import InvalidInput


class BadZoneName(ValueError):
    """Text BIND refuses as a name (a bad escape, an empty or too long label)."""


@dataclass(frozen=True, slots=True)
class ZoneName:
    spelled: str                 # as written in the file
    labels: tuple[bytes, ...]    # decoded, without the root label

    @property
    def shown(self) -> str:
        """Lowercase, escaped only where a byte needs it (dnspython's text form)."""
        if not self.labels:
            return "."
        return dns.name.Name(self.labels).to_text(omit_final_dot=True).lower()

    @property
    def escaped(self) -> bool:
        return "\\" in self.spelled


def decode(spelled: str) -> ZoneName:
    """The name BIND serves for ``spelled``; BadZoneName when BIND would refuse it."""
    text = spelled.strip()
    try:
        name = dns.name.from_text(text.encode("utf-8"), origin=dns.name.root)
    except dns.exception.DNSException as exc:
        raise BadZoneName(f"not a valid name ({exc})") from None
    return ZoneName(spelled, tuple(name.labels[:-1]))


def mail_domain(zone: ZoneName, field: str = "zone") -> str:
    """The domain as mrod stores it (lowercase A-labels), or InvalidInput saying why not."""
    decoded = f"BIND reads it as {zone.shown}: " if zone.escaped else ""
    texts = []
    for label in zone.labels:
        if b"." in label:
            raise InvalidInput(field, f"{decoded}a label holds a dot (\\046), which no mail domain can")
        if not label.isascii():
            raise InvalidInput(field, f"{decoded}a label holds non-ASCII bytes (BIND serves them raw; "
                                      "the zone of a mail domain is named by its xn-- A-label)")
        texts.append(label.decode("ascii"))
    try:
        return names.domain(".".join(texts), field)
    except InvalidInput as exc:
        if not decoded:
            raise
        raise InvalidInput(field, decoded + exc.message) from None


def quoted(spelled: str) -> str:
    """A name for a message: as written in named.conf when it holds escapes (repr() would
    double every backslash), else repr() as for any other value."""
    return f'"{spelled}"' if "\\" in spelled else repr(spelled)
