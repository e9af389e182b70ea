"""Lookup failures Postfix may still be caching — found in its log, said aloud, cleared on demand.

Postfix 3.7's smtpd keeps a per-process cache of address resolves, failed ones included: a
sender/recipient pair that met a lookup failure (mrod stopped or restarting, the database
unreadable) keeps getting ``451 4.3.0 Temporary lookup failure`` from that smtpd process
until it exits or ``postfix reload`` replaces it — even though mrod answers again. Nothing in
Postfix reports the cache; its log does report every failure that could have filled it, e.g.

    postfix/trivial-rewrite[…]: warning: table socketmap:inet:127.0.0.1:10101:relay_domains
        lookup error: Connection refused
    postfix/smtpd[…]: NOQUEUE: reject: RCPT from …: 451 4.3.0 <joe@example.com>: Temporary lookup failure; …

So: the failures of mrod's maps logged since Postfix's master last started or reloaded (a
reload empties every cache), and not older than MAX_AGE (smtpd processes live for at most
max_use = 100 sessions or max_idle = 100 s without one), mean cached failures are likely.
``mrod serve`` looks once at start-up (``PostfixCacheCheck``, a component started after
lookupd listens), logs a warning saying ``postfix reload`` clears them — or reloads itself
with ``[postfix] reload_after_outage = true``; ``mrod health`` shows the same finding.

The log is Postfix's ``maillog_file`` when set (``postconf -h``), else /var/log/mail.log, or
``[postfix] maillog``; only its last TAIL_BYTES are read. Blocking work runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mrod.answers import postfixlines
from mrod.infra.config import Config
from mrod.infra import enums

log = logging.getLogger("mrod.postfixcache")

SYSLOG_MAILLOG = "/var/log/mail.log"
TAIL_BYTES = 32 * 1024 * 1024
MAX_AGE = timedelta(hours=6)
TIMEOUT = 30.0
_MASTER_FRESH = re.compile(r"postfix/master\[\d+\]: (?:daemon started|reload) -- ")
_TEMPFAIL = re.compile(r"NOQUEUE: reject: RCPT from .*: 451 4\.3\.0 <[^>]*>: Temporary lookup failure")
_ISO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)?)\s")
_CLASSIC = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s")


@dataclass(frozen=True)
class Finding:
    failures: int           # failed lookups of mrod's maps ("table lookup problem")
    rejects: int            # RCPTs refused with 451 4.3.0 Temporary lookup failure
    first: str              # the first and last such line's time, as logged
    last: str
    log_path: str

    def message(self) -> str:
        return (f"Postfix logged {self.failures} failed lookup(s) of mrod's maps and {self.rejects} RCPT(s) "
                f"refused with 451 since its last start or reload ({self.first} to {self.last}, {self.log_path}): its "
                "smtpd processes cache failed resolves and keep answering 451 for those sender/recipient pairs; "
                "`postfix reload` clears them")

    def as_dict(self) -> dict[str, object]:
        return {"failures": self.failures, "rejects": self.rejects, "first": self.first, "last": self.last,
                "log": self.log_path, "message": self.message()}


def tables(cfg: Config) -> list[str]:
    """How Postfix names mrod's maps in its warnings (as `mrod postfix-config` wrote them)."""
    found = {postfixlines.table_reference(cfg, name) for name in enums.MAPS}
    return sorted(t for t in found if t)


def scan(text: str, names: list[str], now: datetime) -> tuple[int, int, str, str]:
    """(failures, rejects, first, last) in ``text`` after the master's last start or reload
    and within MAX_AGE of ``now`` (a line whose time cannot be read counts)."""
    start = 0
    for found in _MASTER_FRESH.finditer(text):
        start = found.end()
    failures = rejects = 0
    first = last = ""
    oldest = now - MAX_AGE
    for line in text[start:].splitlines():
        reject = _TEMPFAIL.search(line) is not None
        # Every failed lookup of a map ends in one "MAP_PARAMETER: TABLE: table lookup problem"
        # (socketmap and tcp alike; Postfix's maps.c), whichever daemon met it.
        if not reject and not any(f" {n}: table lookup problem" in line for n in names):
            continue
        stamp, when = _time_of(line, now)
        if when is not None and when < oldest:
            continue
        rejects += reject
        failures += not reject
        first = first or stamp
        last = stamp
    return failures, rejects, first, last


def _time_of(line: str, now: datetime) -> tuple[str, datetime | None]:
    iso = _ISO.match(line)
    if iso:
        try:
            when = datetime.fromisoformat(iso.group(1).replace("Z", "+00:00"))
            return iso.group(1), when if when.tzinfo else when.astimezone()
        except ValueError:
            return iso.group(1), None
    classic = _CLASSIC.match(line)
    if classic:
        # Postfix's own maillog_file and classic syslog: local time, no year.
        try:
            local_now = now.astimezone()
            when = datetime.strptime(f"{local_now.year} {classic.group(1)}", "%Y %b %d %H:%M:%S")
            when = when.replace(tzinfo=local_now.tzinfo)
            if when > local_now + timedelta(days=1):
                when = when.replace(year=local_now.year - 1)
            return classic.group(1), when
        except ValueError:
            return classic.group(1), None
    return "", None


def _postfix_cmd(cfg: Config, program: str, *args: str) -> list[str]:
    found = shutil.which(program) or f"/usr/sbin/{program}"
    return [found, *(["-c", cfg.postfix.config_dir] if cfg.postfix.config_dir else []), *args]


def maillog_path(cfg: Config) -> Path:
    if cfg.postfix.maillog:
        return Path(cfg.postfix.maillog)
    try:
        out = subprocess.run(_postfix_cmd(cfg, "postconf", "-h", "maillog_file"), capture_output=True, text=True,
                             timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        configured = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        configured = ""
    return Path(configured or SYSLOG_MAILLOG)


def detect(cfg: Config, now: datetime | None = None) -> Finding | None:
    """The finding, or None when the log shows no failure that may still be cached. Raises
    OSError when the log cannot be read."""
    path = maillog_path(cfg)
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - TAIL_BYTES))
        text = fh.read().decode("utf-8", "replace")
    failures, rejects, first, last = scan(text, tables(cfg), now or datetime.now(timezone.utc))
    return Finding(failures, rejects, first, last, str(path)) if failures or rejects else None


def reload_postfix(cfg: Config) -> str | None:
    """``postfix reload``; None when done, else why not."""
    try:
        done = subprocess.run(_postfix_cmd(cfg, "postfix", "reload"), capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")


def check_and_act(cfg: Config) -> Finding | None:
    """What `mrod serve` does once at start-up: look, say, and reload when configured to."""
    try:
        finding = detect(cfg)
    except OSError as exc:
        # Debian 12 without rsyslog logs only to the journal: Postfix's own maillog_file (3.4+)
        # or [postfix] maillog gives mrod a file to read.
        log.warning("cannot read Postfix's log to look for cached lookup failures (%s); set Postfix's "
                    "maillog_file or [postfix] maillog, and let mrod read it", exc)
        return None
    if finding is None:
        return None
    log.warning("%s", finding.message())
    if cfg.postfix.reload_after_outage:
        why = reload_postfix(cfg)
        if why is None:
            log.info("postfix reload done ([postfix] reload_after_outage): cached lookup failures cleared")
        else:
            log.warning("postfix reload failed: %s; run it by hand", why)
    else:
        log.warning("run `postfix reload`, or set [postfix] reload_after_outage = true to have mrod do it")
    return finding


class PostfixCacheCheck:
    """A `mrod serve` component: the check, once, in a thread, after lookupd is listening."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.task: asyncio.Task[Finding | None] | None = None

    async def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(asyncio.to_thread(check_and_act, self.cfg))

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
