"""A node's state directory ([node] state_dir): made at start; on PostgreSQL, a node that cannot
write it refuses to start in one line — its routing snapshot, what lookupd answers Postfix from
while the database is unreachable, would otherwise never be written."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.infra import statedir
from mrod.infra.errors import MrodError
from tests.harness import free_port

REPO = Path(__file__).resolve().parents[2]
# Never reached: the refusal comes before any connection (nothing listens on port 1).
URL = "postgresql://mrod@127.0.0.1:1/mrod"


def _write_config(where: Path, state_dir: str | None, *, url: bool = True) -> Path:
    node = "" if state_dir is None else f'[node]\nstate_dir = "{state_dir}"\n'
    database = f'[database]\nurl = "{URL}"\n' if url else '[database]\npath = "mrod.db"\n'
    path = where / "mrod.toml"
    path.write_text(database + node + f'[lookupd]\nsocketmap = "127.0.0.1:{free_port()}"\npolicy = ""\n'
                    f'[admin]\nlisten = "127.0.0.1:{free_port()}"\n[checks]\nenabled = false\n')
    return path


def test_the_default_is_beside_the_database_path_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    cfg = configmod.load(_write_config(tmp_path, None), env={})
    assert cfg.state_dir == tmp_path / "var"          # beside the default path, var/mrod.db
    cfg = configmod.load(_write_config(tmp_path, "state"), env={})
    assert cfg.state_dir == tmp_path / "state"
    cfg = configmod.load(_write_config(tmp_path, "/var/lib/mrod"), env={})
    assert cfg.state_dir == Path("/var/lib/mrod")
    cfg = configmod.load(_write_config(tmp_path, None), env={"MROD_NODE_STATE_DIR": "/srv/mrod"})
    assert cfg.state_dir == Path("/srv/mrod")


def test_start_makes_it_owned_by_the_node_s_user(tmp_path: Path) -> None:
    cfg = configmod.load(_write_config(tmp_path, "deep/state"), env={})
    assert statedir.prepare(cfg) == tmp_path / "deep" / "state"
    info = (tmp_path / "deep" / "state").stat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    assert stat.S_IMODE(info.st_mode) & 0o007 == 0           # not for everyone: 0750 less the umask
    assert list((tmp_path / "deep" / "state").iterdir()) == []   # the write check leaves nothing


def test_on_sqlite_nothing_is_made(tmp_path: Path) -> None:
    cfg = configmod.load(_write_config(tmp_path, "state", url=False), env={})
    assert statedir.prepare(cfg) is None
    assert not (tmp_path / "state").exists()


def test_an_unwritable_state_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    cfg = configmod.load(_write_config(tmp_path, "a-file/state"), env={})
    with pytest.raises(MrodError) as caught:
        statedir.prepare(cfg)
    assert str(caught.value) == (
        f"node.state_dir {tmp_path / 'a-file' / 'state'}: cannot write there (Not a directory); on PostgreSQL"
        " lookupd keeps its routing snapshot there to answer Postfix while the database is unreachable")


@pytest.mark.parametrize("command", ["lookupd", "serve"])
def test_a_node_that_cannot_write_it_refuses_to_start_in_one_line(request: pytest.FixtureRequest,
                                                                  command: str) -> None:
    """As the service's user would be refused by a directory it may not write: here a
    read-only directory and a process that is not root (root writes anywhere)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run mrod as another user")
    home = Path(tempfile.mkdtemp(prefix="mrod-statedir-"))   # pytest's tmp_path is root's alone
    request.addfinalizer(lambda: shutil.rmtree(home))
    os.chmod(home, 0o755)
    locked = home / "locked"
    locked.mkdir(mode=0o755)          # root's: nobody may look in, not write
    config = _write_config(home, str(locked / "state"))
    os.chmod(config, 0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")} | {"PYTHONPATH": str(REPO)}
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                        "-m", "mrod", "--config", str(config), command],
                       cwd="/", capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1, r
    assert r.stderr == (f"mrod: error: node.state_dir {locked / 'state'}: cannot write there (Permission denied);"
                        " on PostgreSQL lookupd keeps its routing snapshot there to answer Postfix while the"
                        " database is unreachable\n")
    assert not (locked / "state").exists()
