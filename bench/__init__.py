"""mrod benchmarks — the figures in BENCHMARKS.md and the commands that produce them.

Run everything with ``make bench`` (= ``.venv/bin/python -m bench.all``) as root on the
machine that has Postfix (postmap, with the sqlite and pgsql map types) and the PostgreSQL 15
server binaries. Each benchmark is also a module of its own with ``--help``:

- ``bench.maps``        Postfix's ``postmap -q -`` against lookupd's socketmap, Postfix's
                        in-process ``sqlite:`` map and its ``pgsql:`` map on a private
                        PostgreSQL cluster: same domains, same keys, sequential and 16 clients;
                        the answers of the three are checked to be identical.
- ``bench.visibility``  delay from a committed change (a separate writer process) to the
                        first socketmap lookup that sees it; the very next lookup must see it.
- ``bench.scale``       lookupd with 1M domains: resident memory and start time.
- ``bench.hotpath``     one lookup query through stdlib sqlite3 on the event loop vs through
                        aiosqlite (a thread hop), the design choice behind lookupd's fast path.

Everything runs on loopback only (free ports), in a scratch directory under ``bench/out/``
(git-ignored), and is bounded in time. The data is built with mrod's own code
(``mrod.domains.bulk_add``) and the real lookupd is started as a subprocess
(``python -m mrod --config F lookupd``). Results go to ``bench/out/results.json`` and a
Markdown summary to ``bench/out/report.md``.
"""
