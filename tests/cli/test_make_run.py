"""`make run` keeps to its checkout (README "Which config a command reads"): it names the
checkout's ./mrod.toml — written from contrib/checkout.toml the first time — and no MROD_*
variable of the caller's shell reaches it, so neither an exported MROD_CONFIG nor a
MROD_DATABASE_PATH leads it to another database. The real Makefile, in a copy of the checkout's
top (its venv reused: nothing is installed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.harness import free_port

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
WAIT = 60.0


def _make(work: Path, *args: str) -> list[str]:
    # -o: the venv's install stamp counts as done (the copied pyproject.toml is newer than it).
    return ["make", "--no-print-directory", "-C", str(work), f"VENV={VENV}", "-o", str(VENV / ".installed"), *args]


def test_make_run_uses_the_checkout_s_config_and_none_of_the_shell_s(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    (work / "contrib").mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "contrib/checkout.toml"):
        shutil.copy(REPO / name, work / name)
    # What an operator's shell on the service's host might carry: they must not be followed.
    decoy = tmp_path / "etc-mrod"
    decoy.mkdir()
    (decoy / "mrod.toml").write_text(f'[database]\npath = "{decoy / "service.db"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    env |= {"MROD_CONFIG": str(decoy / "mrod.toml"), "MROD_DATABASE_PATH": str(decoy / "other.db")}

    made = subprocess.run(_make(work, "mrod.toml"), env=env, capture_output=True, text=True, timeout=WAIT)
    assert made.returncode == 0, made.stderr
    assert (work / "mrod.toml").read_text() == (REPO / "contrib" / "checkout.toml").read_text()
    # The template's own ports are fixed; this shared machine needs free ones.
    text = (work / "mrod.toml").read_text()
    for port in ("10201", "10202", "8381"):
        assert f"127.0.0.1:{port}" in text
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    (work / "mrod.toml").write_text(text)

    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen(_make(work, "run"), env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT
        while "panel listening" not in log.read_text() and run.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        said = log.read_text()
        assert run.poll() is None, said
    finally:
        # What `systemctl stop` does (KillMode=control-group): SIGTERM to every process at once.
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while "mrod serve stopped" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    # Each of the three processes says which it is as it stops, and that it has.
    ends = [line.split(" mrod: ", 1)[1] for line in log.read_text().splitlines()
            if " INFO mrod: " in line and (line.endswith("stopped") or " stopping" in line)]
    assert sorted(ends) == ["mrod serve stopped", "mrod serve stopping (SIGTERM): the lookupd and panel processes",
                            "the lookupd process of mrod serve stopped", "the lookupd process of mrod serve stopping",
                            "the panel process of mrod serve stopped", "the panel process of mrod serve stopping"]
    assert ends[-1] == "mrod serve stopped"
    assert f"{VENV}/bin/mrod --config mrod.toml init" in said
    assert f"mrod serve starting: config {work / 'mrod.toml'}, database {work / 'var' / 'mrod.db'}" in said
    assert (work / "var" / "mrod.db").is_file()
    assert sorted(p.name for p in decoy.iterdir()) == ["mrod.toml"]      # neither decoy database made
