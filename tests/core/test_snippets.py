"""The shipped example config and systemd unit stay true to the code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mrod.infra import config

SNIPPETS = Path(__file__).resolve().parents[2] / "postfix-snippets"


def test_example_config_loads_and_states_the_defaults() -> None:
    example = config.load(SNIPPETS / "mrod.example.toml", env={})
    defaults = config.from_dict({}, base_dir=SNIPPETS)
    for section in config.SECTIONS:
        assert dataclasses.asdict(getattr(example, section)) == dataclasses.asdict(getattr(defaults, section)), section


def test_every_setting_is_in_the_example() -> None:
    text = (SNIPPETS / "mrod.example.toml").read_text()
    for section, cls in config.SECTIONS.items():
        assert f"[{section}]" in text, section
        for field in dataclasses.fields(cls):
            assert f"{field.name} =" in text or f"[{section}.{field.name}]" in text, f"{section}.{field.name}"


def test_systemd_unit_runs_serve() -> None:
    unit = (SNIPPETS / "mrod.service").read_text()
    assert "ExecStart=" in unit and unit.split("ExecStart=")[1].split("\n")[0].endswith("mrod serve")
