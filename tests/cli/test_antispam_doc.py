"""docs/antispam.md, as an operator follows it: the trust kit's config fragment is a valid
[node] section, and the block of `mrod trust-kit` commands runs verbatim (bash, the installed
`mrod` on PATH, the config from $MROD_CONFIG) and writes the files the doc names, each of them
the kit the CLI prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mrod.infra import config as configmod
from mrod.operations import trustkit

DOC = Path(__file__).resolve().parents[2] / "docs" / "antispam.md"


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_the_trust_kit_commands_run_as_written(tmp_path: Path) -> None:
    body = _section("What the primary must do: the trust kit")
    [fragment] = re.findall(r"```toml\n(.*?)```", body, re.S)
    [commands] = [block for block in re.findall(r"```sh\n(.*?)```", body, re.S) if "trust-kit" in block]
    config = tmp_path / "mrod.toml"
    node = fragment.replace("[node]", '[node]\nname = "mx2"')
    config.write_text(f'[database]\npath = "{tmp_path / "mrod.db"}"\n{node}')
    cfg = configmod.load(config, env={})
    assert cfg.node.public_addresses == ("192.0.2.10", "2001:db8::10")
    bindir = str(Path(sys.executable).parent)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MROD_")}, "MROD_CONFIG": str(config),
           "PATH": f"{bindir}:{os.environ['PATH']}"}
    subprocess.run([f"{bindir}/mrod", "init"], env=env, check=True, capture_output=True, timeout=60)
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(["bash", "-e", "-c", commands], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    nodes = [trustkit.NodeAddresses("mx2", cfg.node.public_addresses)]
    written = {"mrod-rspamd.txt": "rspamd", "mrod-backup-mx.cf": "spamassassin",
               "mrod-backup-mx-postscreen.cidr": "postscreen", "mrod-backup-mx.cidr": "postfix"}
    assert sorted(p.name for p in work.iterdir()) == sorted(written)
    for name, fmt in written.items():
        assert (work / name).read_text() == trustkit.render(fmt, nodes)
    assert done.stdout == trustkit.render("spf", nodes)
