"""Delivery outcomes from Postfix's log: mail this backup accepted that the primary then
refused with 5xx, counted per domain (issue 20.3: the recipient list drifting from the
primary's mailboxes, or a primary refusing what its backup took).

Postfix logs every delivery attempt of its smtp/relay clients as one line, e.g.

    postfix/relay[812]: 4DkQ2x0Fz4z: to=<joe@example.com>, relay=mx1.example.net[192.0.2.1]:25,
        delay=1.2, delays=…, dsn=5.1.1, status=bounced (host mx1.example.net[192.0.2.1] said:
        550 5.1.1 <joe@example.com>: User unknown (in reply to RCPT TO command))

A refusal *by the primary* is a line whose explanation quotes the remote server's 5xx reply
("said: 5NN"); a 5xx Postfix made up itself (no MX, a loop) is not counted. With soft_bounce
the same reply is logged ``status=deferred``: it counts too (the primary refused it).

``DeliveryLog`` follows the log — the same one postfixcache reads ([postfix] maillog, else
Postfix's maillog_file, else /var/log/mail.log) — from an offset it keeps in the node's state
directory, at most ROUND_BYTES a round, on a worker thread; after a rotation (a new inode) it
first finishes the rotated file (``NAME.1``) when it is the one it was reading. At its first
round it starts at the end: what was logged before mrod watched is not counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.operations import postfixcache, queuemessages

log = logging.getLogger("mrod.deliveries")

ROUND_BYTES = 8 * 1024 * 1024
STATE_FILE = "maillog-deliveries.json"
_DELIVERY = re.compile(
    r"postfix[^\s\[]*/[^\s\[]+\[\d+\]: (?P<qid>[0-9A-Za-z]+): to=<(?P<to>[^>]*)>,.*? dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}),"
    r" status=(?P<status>[a-z-]+) \((?P<text>.*)\)\s*$")
_PRIMARY_5XX = re.compile(r"\bsaid: (5\d\d)\b")


@dataclass(frozen=True)
class Outcome:
    queue_id: str
    recipient: str
    status: str           # sent, deferred, bounced, …
    dsn: str
    text: str

    @property
    def refused_by_primary(self) -> bool:
        return _PRIMARY_5XX.search(self.text) is not None


def parse(line: str) -> Outcome | None:
    found = _DELIVERY.search(line)
    if found is None:
        return None
    return Outcome(found["qid"], found["to"], found["status"], found["dsn"], found["text"][:500])


class DeliveryLog:
    """Postfix's log, followed round by round (``read_round`` on a worker thread)."""

    def __init__(self, cfg: Config, path: Path | None = None) -> None:
        self.cfg = cfg
        self.path = path
        self.state_path = cfg.state_dir / STATE_FILE
        self.inode: int | None = None
        self.offset = 0
        self._load()

    def _load(self) -> None:
        try:
            saved = json.loads(self.state_path.read_text())
            self.inode, self.offset = int(saved["inode"]), int(saved["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            self.inode, self.offset = None, 0

    def _save(self) -> None:
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"inode": self.inode, "offset": self.offset}))
            tmp.replace(self.state_path)
        except OSError as exc:
            log.debug("cannot keep the log offset in %s: %s", self.state_path, exc)

    def read_round(self) -> list[Outcome]:
        """The outcomes logged since the last round (raises OSError when the log is unreadable)."""
        path = self.path or postfixcache.maillog_path(self.cfg)
        self.path = path
        st = path.stat()
        text = ""
        if self.inode is None:                       # first round: from the end
            self.inode, self.offset = st.st_ino, st.st_size
        elif st.st_ino != self.inode or st.st_size < self.offset:
            rotated = Path(str(path) + ".1")
            try:
                if rotated.stat().st_ino == self.inode:
                    text = self._read(rotated, ROUND_BYTES)
            except OSError:
                pass
            self.inode, self.offset = st.st_ino, 0
        text += self._read(path, ROUND_BYTES - len(text))
        self._save()
        return [o for o in map(parse, text.splitlines()) if o is not None]

    def _read(self, path: Path, limit: int) -> str:
        with open(path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(max(0, limit))
        end = data.rfind(b"\n") + 1          # a line still being written waits for the next round
        self.offset += end
        return data[:end].decode("utf-8", "replace")


async def record(conn: Connection, node: str, outcomes: list[Outcome]) -> dict[str, int]:
    """Count the refusals by the primary per mrod domain; the counts added, by domain name."""
    refused = [o for o in outcomes if o.refused_by_primary]
    if not refused:
        return {}
    async with conn.execute("SELECT id, name, include_subdomains FROM domain") as cur:
        rows = await cur.fetchall()
    ids = {row[1]: row[0] for row in rows}
    subdomains = {row[1]: bool(row[2]) for row in rows}
    added: dict[str, int] = {}
    last: dict[str, str] = {}
    for outcome in refused:
        domain = queuemessages.owner(outcome.recipient, subdomains)
        if domain is not None:
            added[domain] = added.get(domain, 0) + 1
            last[domain] = f"{outcome.queue_id} to=<{outcome.recipient}>: {outcome.text}"[:1000]
    now = db.now()
    async with db.transaction(conn):
        for domain, count in added.items():
            await conn.execute(
                "INSERT INTO primary_refusal (node, domain_id, refused, last_at, last_detail) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (node, domain_id) DO UPDATE SET refused = primary_refusal.refused + excluded.refused,"
                " last_at = excluded.last_at, last_detail = excluded.last_detail",
                (node, ids[domain], count, now, last[domain]))
    return added


async def refusals(conn: Connection, *, domain_id: int | None = None, node: str | None = None
                   ) -> list[dict[str, object]]:
    """Stored counts, most refused first (per node and domain)."""
    where, args = db.where_equal(("p.domain_id", domain_id), ("p.node", node))
    async with conn.execute("SELECT d.name, p.node, p.refused, p.last_at, p.last_detail FROM primary_refusal p"
                            f" JOIN domain d ON d.id = p.domain_id{where} ORDER BY p.refused DESC, d.name",
                            args) as cur:
        return [{"domain": r[0], "node": r[1], "refused": r[2], "last_at": r[3], "last_detail": r[4]}
                for r in await cur.fetchall()]


class DeliveryWatch:
    """The `mrod serve` job: one round of the log, counted into the database."""

    def __init__(self, cfg: Config, path: Path | None = None) -> None:
        self.cfg = cfg
        self.log = DeliveryLog(cfg, path)
        self._warned = False

    async def run_once(self) -> dict[str, int]:
        try:
            outcomes = await asyncio.to_thread(self.log.read_round)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot read Postfix's log for delivery outcomes (%s); set Postfix's maillog_file or"
                            " [postfix] maillog", exc)
                self._warned = True
            return {}
        self._warned = False
        async with db.opened(self.cfg.database) as conn:
            return await record(conn, self.cfg.node.name, outcomes)
