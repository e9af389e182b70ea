"""A process told to stop while its components are still starting stops what had started and
says so, instead of ending at Python's default SIGTERM action with nothing stopped (seen as a
`mrod serve` whose panel process left no "stopping"/"stopped" lines when stopped under load)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, logging, os, signal, sys
    from mrod.cli.server import run_components

    class Item:
        def __init__(self, name, signal_self=False):
            self.name, self.signal_self = name, signal_self

        async def start(self):
            print("started", self.name, flush=True)
            if self.signal_self:       # SIGTERM arrives while this component is starting
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(0.2)

        async def stop(self):
            print("stopped", self.name, flush=True)

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    asyncio.run(run_components([Item("first", signal_self=True), Item("second")], "the test process"))
""")


def test_sigterm_during_start_stops_what_started_and_starts_nothing_more() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["started first", "the test process stopping", "stopped first",
                                        "the test process stopped"]
