"""mrod benchmarks — the figures in BENCHMARKS.md and the commands that produce them.

Run everything with ``make bench`` (= ``.venv/bin/python -m bench.all``) as root on the
machine that has Postfix (postmap, with the sqlite and pgsql map types) and the PostgreSQL 15
server binaries. Each benchmark is also a module of its own with ``--help``:

- ``bench.maps``        Postfix's ``postmap -q -`` against lookupd's socketmap, Postfix's
                        in-process ``sqlite:`` map and its ``pgsql:`` map on a private
                        PostgreSQL cluster: same domains, same keys, sequential (also pinned
                        to one vCPU) and 16 clients; the answers are checked to be identical.
                        With a no-op socketmap server (``bench.floor``) as the floor, and
                        the C floor (``/work/shared/bench/floor.c``, built with gcc into
                        build/ at bench time; its row is skipped when the file is absent) as
                        the reference no server here can beat. ``--rows``/``--modes`` pick.
- ``bench.throughput``  Postfix's own messages/s (smtp-source) with mrod's maps against
                        ``hash:`` files; ``--policy`` adds the recommended config with the
                        policy service, to price it per message.
- ``bench.visibility``  delay from a committed change (a separate writer process,
                        ``bench.writer``) to the first socketmap lookup that sees it; the very
                        next lookup must see it.
- ``bench.scale``       lookupd with 1M domains: resident memory and start time.
- ``bench.hotpath``     one lookup query through stdlib sqlite3 on the event loop vs through
                        aiosqlite (a thread hop), the design choice behind lookupd's fast path.
- ``bench.breakdown``   the cost of each layer of a lookup inside lookupd, without sockets
                        (and ``--baseline TREE`` to compare with another source tree).
- ``bench.profile``     ``perf`` on lookupd under postmap load: Python, kernel, SQLite shares.
- ``bench.workers``     what several lookupd processes sharing the port (SO_REUSEPORT) would
                        give 16 clients — an option measured, not built.

Other areas keep their own benchmarks here too: ``bench.panel_list``, ``bench.cli_import`` and
``bench.bind_import``, which ``bench.all`` runs after the lookup ones (``--only`` picks), and
``bench.metrics_cost``, run on its own. Several nodes on PostgreSQL (issue 11), each run on its
own: ``bench.pg_propagation`` (a committed change reaching another node's lookupd) and
``bench.pg_lookup`` (lookup speed on PostgreSQL vs SQLite, also with the server frozen or
stopped and while a writer commits).

Everything runs on loopback only (free ports), in a scratch directory under ``bench/out/``
(git-ignored), and is bounded in time. The data is built with mrod's own code
(``mrod.entities.domainimport.bulk_add``) and the real lookupd is started as a subprocess
(``python -m mrod --config F lookupd``). Results go to ``bench/out/results.json`` and a
Markdown summary to ``bench/out/report.md``.
"""
