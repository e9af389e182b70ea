"""Help for every command and option, and an example for the common commands.

Area modules write help beside their options; this fills what they leave unsaid with the
wording shared by many commands (``--json``, a NAME or DOMAIN argument), and adds the
examples shown under ``mrod COMMAND --help``. A test walks the parser: nothing goes without help,
and no two options of one command share a text (options that set one value — --enable and
--disable — say each what it does, beside it, not here by their shared dest).
"""

from __future__ import annotations

import argparse

# Shared wording, by the option's dest (or a positional's dest).
BY_DEST = {
    "json": "print JSON instead of a table",
    "log_level": "the least important log lines shown (default INFO)",
    "domain": "the domain (e.g. example.com; Unicode names are fine)",
    "domains": "one or more domains",
    "addresses": "user@domain, or @domain for every address of the domain",
    "file": "a file with one domain per line and an optional relay name after a space; '-' reads stdin",
    "map": "the map Postfix asks",
    "key": "the key Postfix sends (e.g. a domain, or user@domain for transport and relay_recipients)",
    "password_stdin": "read the password from the first line of stdin",
    "port": "TCP port of the primary (1-65535, default 25)",
    "host": "host name or IP address of the primary",
    "protocol": "smtp (plain, STARTTLS when offered) or smtps (implicit TLS, usually port 465)",
    "tls": "TLS requirement: may, encrypt, verify or secure",
    "source": "only domains added this way",
    "recipients": "only domains with this recipient policy",
}

# Specific wording, by (command path, dest).
BY_COMMAND = {
    ("relay add", "name"): "a short name for the primary (letters, digits, '.', '_', '-')",
    ("relay set", "name"): "the relay to change",
    ("relay rm", "name"): "the relay to remove",
    ("user add", "name"): "the sign-in name",
    ("user passwd", "name"): "the user whose password changes",
    ("user set", "name"): "the user to change",
    ("user rm", "name"): "the user to remove",
    ("check", "domain"): "only this domain (default: every domain)",
    ("recipient list", "domain"): "the domain (its recipient policy should be 'listed')",
}

EXAMPLES = {
    "init": "mrod init                          # creates the database and the first panel admin\n"
            "mrod --config /etc/mrod/mrod.toml init",
    "serve": "mrod serve\nMROD_CONFIG=/etc/mrod/mrod.toml mrod serve --log-level DEBUG",
    "relay add": "mrod relay add primary --host mx1.example.net --tls encrypt\n"
                 "mrod relay add legacy --host 192.0.2.10 --port 465 --protocol smtps",
    "relay rm": "mrod relay rm old --reassign primary   # moves old's domains to primary first",
    "domain add": "mrod domain add example.com --relay primary\n"
                  "mrod domain add example.org --relay primary --subdomains --recipients listed\n"
                  "mrod domain add example.net --mx --tls encrypt",
    "domain set": "mrod domain set example.com --disable\nmrod domain set example.com --pause 'primary migration'",
    "domain import": "mrod domain import domains.txt --relay primary\n"
                     "printf 'a.example\\nb.example other\\n' | mrod domain import -",
    "recipient add": "mrod recipient add sales@example.org info@example.org\n"
                     "mrod recipient add @example.org      # every address of example.org",
    "recipient list": "mrod recipient list example.org",
    "user add": "mrod user add alice --perm domains --perm queue\n"
                "echo 'a long password' | mrod user add bob --admin --password-stdin",
    "lookup": "mrod lookup relay_domains example.com\nmrod lookup transport 'User+tag@Example.COM'",
    "postfix-config": "mrod postfix-config --main >> /etc/postfix/main.cf   # then review it",
    "check": "mrod check\nmrod check example.com --json",
    "queue": "mrod queue\nmrod queue --domain example.com --flush\n"
             "mrod queue list --domain example.com --older-than 1d",
    "queue list": "mrod queue list --domain example.com --queue deferred --limit 20\n"
                  "mrod queue list --after 4Y8xKf0q3zz1x   # the next page",
    "queue delete": "mrod queue delete 4Y8xKf0q3zz1x --yes\nmrod queue delete --domain spam.example --all-matching",
    "health": "mrod health --probe",
    "import-bind": "mrod import-bind --dry-run",
}


def complete(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Fill missing help and add examples, recursively over the subcommands."""
    example = EXAMPLES.get(path)
    if example:
        parser.epilog = "example:\n" + "\n".join("  " + line for line in example.splitlines())
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                complete(child, f"{path} {name}".strip())
        elif not action.help:
            action.help = BY_COMMAND.get((path, action.dest)) or BY_DEST.get(action.dest)
