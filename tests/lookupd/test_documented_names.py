"""Every metric and policy decision the docs name exists, and every one mrod exports is in
docs/operations.md (README, docs/ and the Postfix snippets' README are read). The exported
names come from the code that builds them (some families appear only on PostgreSQL, after a
BIND import, or on a failed scrape), checked against a real scrape of what a running lookupd
and the database give; the decisions from every ``Decision(action, reason)`` the policy makes."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.parser import text_string_to_metric_families

from mrod.infra import db
from mrod.lookupd.metricsserver import lookupd_families
from mrod.operations import metrics

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "postfix-snippets" / "README.md"]
SOURCES = [*(REPO / "mrod").rglob("*.py"), *(REPO / "lookupd").rglob("*.py"), *(REPO / "admin").rglob("*.py")]
# mrod_ names in the docs that are not metrics: the panel's session cookie, the PostgreSQL
# NOTIFY channel lookupd listens on.
NOT_METRICS = {"mrod_session", "mrod_change"}
FAMILIES = {"CounterMetricFamily": "counter", "GaugeMetricFamily": "gauge", "HistogramMetricFamily": "histogram"}


def _string_arg(call: ast.Call, index: int) -> str | None:
    arg = call.args[index] if len(call.args) > index else None
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _calls(name: str) -> list[ast.Call]:
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if called == name:
                    found.append(node)
    return found


def exported_metrics() -> set[str]:
    """The names a scrape shows: a counter family ``x`` is exported as ``x_total``."""
    names, unnamed = set(), []
    for cls, kind in FAMILIES.items():
        for call in _calls(cls):
            name = _string_arg(call, 0)
            if name is None:
                unnamed.append(cls)
            else:
                names.add(name + "_total" if kind == "counter" else name)
    # The one family built from a name passed in: metrics.histogram(latency, name, …), whose
    # callers name it; any other would escape this scan.
    assert unnamed == ["HistogramMetricFamily"]
    for call in _calls("histogram"):
        name = _string_arg(call, 1)
        if name is not None and name.startswith("mrod_"):
            names.add(name)
    return names


def decisions() -> set[str]:
    found = set()
    for call in _calls("Decision"):
        reason = _string_arg(call, 1)
        assert reason is not None, f"a Decision whose reason is not a literal (line {call.lineno})"
        found.add(reason)
    return found


def _docs() -> str:
    return "\n".join(path.read_text() for path in DOCS)


def documented_metrics(text: str) -> set[str]:
    return set(re.findall(r"\bmrod_[a-z][a-z_]*[a-z]\b", text)) - NOT_METRICS


def _decision_row() -> set[str]:
    rows = [line for line in (REPO / "docs" / "operations.md").read_text().splitlines()
            if line.startswith("| `mrod_policy_decisions_total`")]
    assert len(rows) == 1
    return {d.strip() for d in rows[0].split("`decision`:", 1)[1].rstrip("| ").split(",")}


def test_every_metric_the_docs_name_is_exported_and_every_exported_one_is_documented() -> None:
    exported = exported_metrics()
    assert "mrod_policy_decisions_total" in exported
    assert "mrod_lookup_duration_seconds" in exported
    assert sorted(documented_metrics(_docs()) - exported) == []
    operations = documented_metrics((REPO / "docs" / "operations.md").read_text())
    assert sorted(exported - operations) == []


def test_every_decision_the_docs_name_is_made_and_every_one_made_is_documented() -> None:
    made = decisions()
    assert {"dunno", "database-unreachable", "database-unreachable-defer"} <= made
    assert _decision_row() == made
    named = set(re.findall(r'decision="([a-z-]+)"', _docs()))
    assert named and sorted(named - made) == []
    prose = (REPO / "docs" / "operations.md").read_text()
    assert sorted(d for d in made if f"`{d}`" not in prose) == []


def test_the_docs_show_this_schema_version() -> None:
    shown = set(re.findall(r"ready \(schema version (\d+)\)", _docs()))
    assert shown == {str(db.SCHEMA_VERSION)}


async def test_what_a_scrape_shows_is_what_the_code_scan_found(lookupd_factory: Any) -> None:
    """The scan above is checked against a real scrape: a running lookupd's families (after a
    policy decision) and the database's, encoded as Prometheus serves them."""
    from mrod.answers import policy

    d = await lookupd_factory()
    d.policy.count(policy.when_database_unreachable("defer"))
    families = lookupd_families(d) + metrics.database_families(d.config.database)
    families.append(metrics._scrape_error("database", OSError("test")))

    class Fixed(Collector):
        def collect(self) -> list[Any]:
            return families

    registry = CollectorRegistry()
    registry.register(Fixed())
    text = generate_latest(registry).decode()
    # The parser names a counter family without its _total, as Prometheus' TYPE line does.
    shown = {f.name + "_total" if f.type == "counter" else f.name for f in text_string_to_metric_families(text)}
    assert 'mrod_policy_decisions_total{decision="database-unreachable-defer"} 1.0' in text
    assert len(shown) >= 14 and sorted(shown - exported_metrics()) == []
