"""Failure diagnostics for real-component tests (a pytest plugin).

A real component that a test started (a Postfix instance, a lookupd subprocess) registers
itself with ``watch(component)`` and ``unwatch(component)`` when it stops. When a test's setup
or call phase fails, every component watched at that moment adds its own report sections —
``component.diagnostics() -> list[(title, text)]`` — to the failure report, so the log tail of
the Postfix instance or lookupd's stderr is shown next to the assertion that failed.
"""

from __future__ import annotations

from typing import Generator, Protocol

import pluggy
import pytest


class Diagnosable(Protocol):
    def diagnostics(self) -> list[tuple[str, str]]: ...


_watched: list[Diagnosable] = []


def watch(component: Diagnosable) -> None:
    if component not in _watched:
        _watched.append(component)


def unwatch(component: Diagnosable) -> None:
    if component in _watched:
        _watched.remove(component)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, pluggy.Result, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "teardown" or not report.failed:
        return
    for component in list(_watched):
        try:
            sections = component.diagnostics()
        except Exception as exc:  # noqa: BLE001 - a diagnostic must never hide the failure
            sections = [(type(component).__name__, f"(no diagnostics: {exc!r})")]
        for title, text in sections:
            report.sections.append((title, text))
