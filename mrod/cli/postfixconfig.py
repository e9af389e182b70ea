"""``mrod postfix-config --postconf`` / ``--apply``: mrod's settings merged into a Postfix
configuration through Postfix's own ``postconf`` (the merge rules: answers/postconfplan.py).

--postconf prints the ``postconf -e`` commands (nothing changes); --apply shows the same changes
as a diff, makes them, checks the result with ``postfix check`` and then reloads a running
Postfix or starts a stopped one.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from mrod.answers import postconfplan, postfixlines
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.errors import InvalidInput, MrodError

DEFAULT_DIR = "/etc/postfix"


class PostfixCommandFailed(MrodError):
    pass


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise PostfixCommandFailed(f"{argv[0]} not found: install Postfix (apt install postfix)") from None
    if check and result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise PostfixCommandFailed(f"{' '.join(argv)} failed: {last}")
    return result


def _postconf(directory: str, *args: str) -> str:
    return _run(["postconf", "-c", directory, *args]).stdout


def _effective(directory: str, names: list[str]) -> dict[str, str]:
    return postconfplan.parse_main_cf(_postconf(directory, *names))


def usable_hostname(name: str) -> bool:
    """Whether Postfix may be told ``myhostname = name``: fully qualified, and not localhost's
    (a host whose own name resolves to localhost). As myhostname, "localhost" would be the name
    this backup MX greets the Internet and its primaries with (refused as a HELO by many) and
    mail to it would loop back: Postfix's own default, from the host name, is better than that."""
    return "." in name and name.split(".", 1)[0].lower() not in ("localhost", "localhost4", "localhost6")


def changes_for(cfg: Config, directory: str, fqdn: str) -> tuple[list[postconfplan.Change], list[str], bool]:
    """(main.cf changes, master.cf services to add, whether main.cf is missing). ``fqdn`` is this
    host's name (socket.getfqdn()); a fresh main.cf gets it as myhostname when it is usable."""
    wanted = postconfplan.with_retention(postconfplan.parse_main_cf(postfixlines.main_cf(cfg)), longest_lifetime(cfg))
    names = sorted(set(wanted) | {"smtpd_reject_unlisted_recipient"})
    main_cf = Path(directory) / "main.cf"
    fresh = not main_cf.exists()
    if fresh:
        # Postfix's defaults: postconf on an empty main.cf of our own.
        with tempfile.TemporaryDirectory() as empty:
            Path(empty, "main.cf").touch()
            effective, explicit = _effective(empty, names), {}
        changes = [c for c in postconfplan.minimum(fqdn)
                   if c.parameter != "myhostname" or usable_hostname(fqdn)]
    else:
        effective = _effective(directory, names)
        explicit = postconfplan.parse_main_cf(_postconf(directory, "-n"))
        changes = []
    changes += postconfplan.plan(wanted, explicit, effective)
    service = cfg.lookupd.smtps_transport
    services = [] if _has_service(Path(directory) / "master.cf", service) else [service]
    return changes, services, fresh


def longest_lifetime(cfg: Config) -> tuple[str, int] | None:
    """The domain with the longest queue_lifetime of its own (retention), or None — also when
    the database is not there yet (postfix-config may run before `mrod init`)."""
    async def read() -> tuple[str, int] | None:
        async with db.opened(cfg.database) as conn:
            async with conn.execute("SELECT name, queue_lifetime FROM domain WHERE queue_lifetime IS NOT NULL"
                                    " ORDER BY queue_lifetime DESC, name LIMIT 1") as cur:
                row = await cur.fetchone()
        return (row[0], int(row[1])) if row else None
    try:
        return asyncio.run(read())
    except MrodError:
        return None


def _has_service(master_cf: Path, service: str) -> bool:
    try:
        lines = master_cf.read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(line.split()[:2] == [service, "unix"] for line in lines if line and line[0] not in "# \t")


def commands(cfg: Config, directory: str, changes: list[postconfplan.Change], services: list[str],
             fresh: bool) -> list[list[str]]:
    base = ["postconf"] if directory == DEFAULT_DIR else ["postconf", "-c", directory]
    found: list[list[str]] = []
    if fresh:
        found.append(["touch", str(Path(directory) / "main.cf")])
    found += [[*base, "-e", f"{c.parameter} = {c.new}"] for c in changes]
    for service in services:
        found.append([*base, "-M", f"{service}/unix={service} unix - - n - - smtp"])
        found.append([*base, "-P", f"{service}/unix/smtp_tls_security_level=encrypt",
                      f"{service}/unix/smtp_tls_wrappermode=yes"])
    return found


def run(args: argparse.Namespace, cfg: Config, fqdn: str | None = None) -> int:
    """``fqdn``: this host's name; socket.getfqdn() unless given."""
    directory = args.postfix_dir or cfg.postfix.config_dir or DEFAULT_DIR
    if not Path(directory).is_dir():
        raise InvalidInput("--postfix-dir", f"{directory} is not a directory")
    fqdn = socket.getfqdn() if fqdn is None else fqdn
    changes, services, fresh = changes_for(cfg, directory, fqdn)
    todo = commands(cfg, directory, changes, services, fresh)
    asked = ["recipient_delimiter", postfixlines.DNSSEC_PARAMETER]
    notes = postconfplan.warnings(postconfplan.parse_main_cf(postfixlines.main_cf(cfg)),
                                  _effective(directory, asked) if not fresh else {})
    notes += postconfplan.retention_warnings(
        _effective(directory, ["maximal_queue_lifetime"]) if not fresh else {}, longest_lifetime(cfg))
    if fresh and not usable_hostname(fqdn):
        notes.append(f"myhostname is left out: this host's name resolves to {fqdn!r}, which Postfix must not "
                     "greet other mail servers with; set the name your MX records use "
                     "(postconf -e 'myhostname = mx2.example.net')")
    out = sys.stdout
    if not args.apply:
        out.write(f"# mrod: Postfix settings for {directory}"
                  + (" (no main.cf yet: Debian's 'No configuration')" if fresh else "") + "\n")
        for note in notes:
            out.write(f"# WARNING: {note}\n")
        for argv in todo:
            out.write(shlex.join(argv) + "\n")
        if not todo:
            out.write("# nothing to change: Postfix is already set up for mrod\n")
        return 0
    for note in notes:
        out.write(f"warning: {note}\n")
    if not todo:
        out.write(f"{directory}: nothing to change; Postfix is already set up for mrod\n")
        return 0
    out.write(postconfplan.diff(changes))
    for service in services:
        out.write(f"+ master.cf: {service} unix - - n - - smtp (implicit TLS)\n")
    out.flush()
    for argv in todo:
        _run(argv)
    _run(["postfix", "-c", directory, "check"])
    running = _run(["postfix", "-c", directory, "status"], check=False).returncode == 0
    _run(["postfix", "-c", directory, "reload" if running else "start"])
    out.write(f"{directory}: {len(todo)} change(s) made; Postfix {'reloaded' if running else 'started'}\n")
    return 0
