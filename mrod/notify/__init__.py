"""Notifications: mrod tells the operator, and each domain's owner, what needs them.

A job under ``mrod serve`` (dispatcher.run_round, every [notify] interval) asks every
registered **event source** what holds now, compares that with what it told before (the
``notify_state`` table, per node: a restart does not tell anything again), and sends:

* a notice when a condition appears, again at most once per [notify] repeat while it lasts,
  and a "resolved" notice when a round no longer reports it (with how long it lasted);
* all of one round's notices as ONE message per recipient — a dead relay with 500 domains is
  one line in one message to the operator, and one message to each owner listing their domains;
* through every channel ([notify.email] to the operator's addresses and to each owner's contact
  address, [notify.webhook] to the operator's endpoint); every message is stored (and audited)
  in the ``notification`` table, and one that fails is retried with backoff.

The event-source interface (how other features add their events)
------------------------------------------------------------------
An event source is an async function ``source(ctx: SourceContext) -> Iterable[Event]`` that
reads state (``ctx.conn``: the database; ``ctx.cfg``: the config; ``ctx.node``: this node's
name; ``ctx.now``: the round's time, aware UTC) and returns the conditions that hold *now*::

    from mrod.notify import events

    async def sync_failures(ctx: events.SourceContext) -> list[events.Event]:
        rows = ...                       # e.g. recipient sources whose last sync failed
        return [events.Event("source_sync_failed", row.name, Severity.WARNING,
                             f"recipient source {row.name}: sync failing since {row.since}: {row.error}",
                             domains=tuple(row.domains)) for row in rows]

    events.register("source_sync_failed", sync_failures)

``Event(kind, subject, severity, text, domains=(), resolved="resolved", since=None)``: ``kind`` names the event
(``relay_down``…), ``subject`` what it is about (a relay, a domain, a node); (kind, subject) is
the unit of deduplication. ``domains`` lists the domain names it affects: their owners are told
too. ``resolved`` is the phrase of the "back" notice ("is back up"; default "resolved"), which
also says how long the condition lasted — from ``since`` (a ``mrod.infra.db.stamp``) when the
source knows when it began, else from the round that first saw it. A
source never sends anything and holds no state: returning an event each round keeps it open,
leaving it out resolves it. A source that raises is logged and its conditions are kept as they
were (a failing reader does not resolve everything it reported). Register at import time of
the module that owns the feature; mrod.notify.conditions registers the built-in ones.
"""
