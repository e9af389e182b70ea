"""The configuration files of a private Postfix test instance (see tests/harness/postfix.py).

main.cf is built in three layers, later ones winning: ``base_settings`` (below), then mrod's
own ``mrod.postfixlines.main_cf(config)`` lines, then the test's own settings. master.cf is
Debian's master.cf.dist with the ``smtp inet`` service moved to 127.0.0.1:PORT, followed by
``mrod.postfixlines.master_cf(config)`` (the implicit-TLS transport) and any extra lines.
"""

from __future__ import annotations

from pathlib import Path

MASTER_CF_DIST = Path("/usr/share/postfix/master.cf.dist")


def base_settings(d: Path, mynetworks: str) -> dict[str, str]:
    """What every test instance starts from. ``d`` is the instance directory."""
    return {
        "compatibility_level": "3.6",     # as Debian's main.cf; 0 would turn SMTPUTF8 off
        "config_directory": str(d / "etc"),
        "queue_directory": str(d / "spool"),
        "data_directory": str(d / "data"),
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "myhostname": "backup-mx.test",
        "mydomain": "backup-mx.test",
        "mydestination": "",
        # The test client (127.0.0.1) is not trusted: only relay_domains lets mail in.
        "mynetworks": mynetworks,
        # No syslog here; Postfix insists the log file sits under one of the prefixes.
        "maillog_file": str(d / "postfix.log"),
        "maillog_file_prefixes": str(d),
        # Nothing local and nothing outside: mail mrod does not route is bounced in place,
        # and no DNS query leaves the machine (not even for the client's name).
        # (user@[127.0.0.1] is local by Postfix's rules: unknown users are refused at RCPT, and
        # known ones — root — are bounced rather than delivered to the host's mailboxes.)
        "alias_maps": "",
        "alias_database": "",
        "local_transport": "error:5.1.1 test instance: no local delivery",
        "default_transport": "error:5.7.1 test instance: no delivery outside the test",
        "smtpd_peername_lookup": "no",
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "smtpd_banner": "$myhostname ESMTP test instance",
        "smtpd_error_sleep_time": "0s",
        # Deferred mail is tried again within seconds, not minutes.
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "smtp_connect_timeout": "5s",
        "delay_warning_time": "0h",
        "smtp_tls_security_level": "may",
    }


def parse_main_cf(text: str) -> dict[str, str]:
    """``name = value`` lines of a main.cf fragment (comments and blanks skipped)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            raise ValueError(f"continuation lines are not supported here: {line!r}")
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not a main.cf setting: {line!r}")
        found[name.strip()] = value.strip()
    return found


def main_cf_text(settings: dict[str, str]) -> str:
    lines = [f"{name} = {value}" for name, value in settings.items()]
    return "# private Postfix instance for a test (tests/harness/postfix.py)\n" + "\n".join(lines) + "\n"


def master_cf_text(port: int, extra: str) -> str:
    out = []
    for line in MASTER_CF_DIST.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "smtp" and fields[1] == "inet":
            line = f"127.0.0.1:{port} " + line.split(None, 1)[1]
        out.append(line)
    return "\n".join(out) + "\n" + extra
