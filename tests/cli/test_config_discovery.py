"""Where the config comes from, what a command says it used, and that only `init` creates a
database (issue 12 point 2, issue 9 point 4): every config check happens before any change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mrod.cli import main
from mrod.infra.config import loader

# Whether /etc/mrod/mrod.toml exists matters here, and the package tests install one: under
# xdist these tests run in the group "system" with them (tests/conftest.py XDIST_GROUPS).
REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "mrod", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**clean, **(env or {})})


def test_a_command_outside_the_checkout_names_the_config_it_read(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "mrod.toml").write_text('[database]\npath = "state/mrod.db"\n')
    assert run(["init"], site).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run(["domain", "list"], elsewhere)
    # No config there (and /etc/mrod/mrod.toml, installed or not, is not read by a checkout's
    # mrod): the hint says so, and nothing was created where the operator stood.
    assert r.returncode == 1, r.stderr
    assert "run 'mrod init' first" in r.stderr
    assert "config: none found" in r.stderr
    assert list(elsewhere.iterdir()) == []
    # With $MROD_CONFIG, the same command works from anywhere; relative paths follow the file.
    r = run(["domain", "list"], elsewhere, {"MROD_CONFIG": str(site / "mrod.toml")})
    assert r.returncode == 0, r.stderr
    assert (site / "state" / "mrod.db").exists()


@pytest.mark.parametrize("command", [["serve"], ["admin"], ["lookup", "relay_domains", "example.com"],
                                     ["user", "add", "bob", "--password-stdin"], ["domain", "list"]])
def test_no_command_but_init_creates_a_database(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "mrod.toml").write_text('[database]\npath = "var/mrod.db"\n[lookupd]\nsocketmap = "127.0.0.1:0"\n'
                                        'policy = ""\n[admin]\nlisten = "127.0.0.1:0"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")} | {"PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "mrod", *command], cwd=tmp_path, input="a long password\n",
                       capture_output=True, text=True, timeout=60, env=env)
    assert not (tmp_path / "var").exists(), r.stderr
    assert r.returncode != 0
    if command[0] != "lookup":     # lookup answers TEMP (what lookupd would say), the others refuse
        assert f"run 'mrod init' first (config {tmp_path / 'mrod.toml'})" in r.stderr


def test_admin_with_half_a_tls_config_exits_2_before_anything(tmp_path: Path) -> None:
    (tmp_path / "mrod.toml").write_text('[database]\npath = "var/mrod.db"\n'
                                        '[admin]\nlisten = "127.0.0.1:0"\ntls_cert = "panel.crt"\n')
    (tmp_path / "panel.crt").write_text("not used\n")
    r = run(["admin"], tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip() == "mrod: error: admin.tls_cert and admin.tls_key: give both, or neither"
    assert not (tmp_path / "var").exists()


def test_a_misspelt_environment_variable_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mrod.toml").write_text("")
    monkeypatch.setenv("MROD_LOOKUPD_SOCKETMAPP", "127.0.0.1:1")
    assert main(["--config", str(tmp_path / "mrod.toml"), "init"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mrod: error: environment variable MROD_LOOKUPD_SOCKETMAPP names no setting")
    assert "did you mean MROD_LOOKUPD_SOCKETMAP" in err
    assert "\n" not in err
    assert not (tmp_path / "var").exists()


def test_system_config_comes_after_the_local_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "etc" / "mrod.toml"
    system.parent.mkdir()
    system.write_text('[database]\npath = "/var/lib/mrod/mrod.db"\n')
    monkeypatch.setattr(loader, "SYSTEM_CONFIG", system)
    monkeypatch.setattr(loader, "CHECKOUT", None)          # an installed mrod
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = loader.load(env={})
    assert cfg.source == system
    assert cfg.database.path == Path("/var/lib/mrod/mrod.db")
    assert loader.describe(cfg) == f"config {system}, database /var/lib/mrod/mrod.db"
    (work / "mrod.toml").write_text('[database]\npath = "here.db"\n')
    cfg = loader.load(env={})
    assert cfg.source == work / "mrod.toml"
    assert cfg.database.path == work / "here.db"


def test_check_names_config_and_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mrod.toml"
    path.write_text('[database]\npath = "m.db"\n[checks]\nenabled = false\n')
    assert main(["--config", str(path), "init"]) == 0
    capsys.readouterr()
    assert main(["--config", str(path), "check"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"config {path}, database {tmp_path / 'm.db'}"


def test_a_directory_the_user_may_not_look_into_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`runuser -u mrod -- mrod …` typed in root's home: ./mrod.toml cannot even be looked for
    there; mrod goes on to the next place instead of failing with a traceback. (A child
    process that stands in root's private directory, then becomes nobody.)"""
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    import pwd

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "mrod.toml").write_text("this is not read\n")
    nobody = pwd.getpwnam("nobody")
    system = Path(tempfile.mkdtemp(prefix="mrod-etc-")) / "mrod.toml"   # a system config nobody can read
    system.write_text("")
    os.chmod(system.parent, 0o755)
    monkeypatch.setattr(loader, "SYSTEM_CONFIG", system)
    monkeypatch.setattr(loader, "CHECKOUT", None)          # an installed mrod
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:      # the child: never returns into pytest
        try:
            os.chdir(private)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            found = loader.find_config_path(None, {})
            os.write(write, f"found {found}".encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(write, f"raised {type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        said = fh.read()
    os.waitpid(pid, 0)
    shutil.rmtree(system.parent)
    assert said == f"found {system}"


# -- a checkout never takes over an installed service ---------------------------------------------


@pytest.fixture
def installed_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed mrod's /etc/mrod/mrod.toml and its database with one domain, under a tmp
    root (discovery's SYSTEM_CONFIG pointed there: the real /etc/mrod belongs to the package)."""
    system = tmp_path / "etc" / "mrod" / "mrod.toml"
    system.parent.mkdir(parents=True)
    system.write_text(f'[database]\npath = "{tmp_path / "var" / "lib" / "mrod" / "mrod.db"}"\n')
    monkeypatch.setattr(loader, "SYSTEM_CONFIG", system)
    assert main(["--config", str(system), "init"]) == 0
    assert main(["--config", str(system), "domain", "add", "production.example", "--host", "mx.example.net"]) == 0
    return system


def test_the_tests_run_a_checkout_s_mrod_and_an_installed_one_is_not() -> None:
    assert loader.CHECKOUT == REPO
    site = REPO / "build" / "not-a-checkout" / "site-packages"       # a wheel's layout: no pyproject.toml above
    assert loader._checkout_root(site / "mrod" / "infra" / "config" / "loader.py") is None


def test_a_checkout_s_mrod_never_reads_the_installed_service_s_config(
        installed_service: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    checkout_dir = tmp_path / "work"
    checkout_dir.mkdir()
    monkeypatch.chdir(checkout_dir)
    capsys.readouterr()
    # The very case reported: `mrod domain list` in a checkout without ./mrod.toml listed the
    # production database. Now it finds no config, says why, and lists nothing.
    assert main(["domain", "list"]) == 1
    out, err = capsys.readouterr()
    assert "production.example" not in out
    assert err.strip() == (f"mrod: error: database {checkout_dir / 'var' / 'mrod.db'} does not exist; run 'mrod init'"
                           f" first (config: none found (built-in defaults; no ./mrod.toml in {checkout_dir};"
                           f" {installed_service} is not read by the mrod of the checkout {REPO}))")
    assert loader.load(env={}).source is None
    # An installed mrod, in the same place, does read it.
    monkeypatch.setattr(loader, "CHECKOUT", None)
    assert loader.load(env={}).source == installed_service
    assert main(["domain", "list"]) == 0 and "production.example" in capsys.readouterr().out


def test_a_checkout_s_mrod_told_to_use_the_service_s_database_names_it(
        installed_service: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--config", str(installed_service), "domain", "add", "oops.example", "--host", "mx.example.net"]) == 0
    database = installed_service.parents[2] / "var" / "lib" / "mrod" / "mrod.db"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mrod: note: this command used database {database} (config {installed_service}): the installed"
        f" service's database, not this checkout's ({REPO})")


def test_root_on_a_database_of_another_user_from_a_checkout_is_named(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to own a file as another user")
    import pwd

    config = tmp_path / "mrod.toml"
    config.write_text('[database]\npath = "service.db"\n')
    assert main(["--config", str(config), "init"]) == 0
    nobody = pwd.getpwnam("nobody")
    os.chown(tmp_path / "service.db", nobody.pw_uid, nobody.pw_gid)
    capsys.readouterr()
    assert main(["--config", str(config), "domain", "add", "oops.example", "--host", "mx.example.net"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"mrod: warning: {tmp_path / 'service.db'} belongs to nobody; run as that user")
    assert err[-1] == (f"mrod: note: this command used database {tmp_path / 'service.db'} (config {config}):"
                       f" it belongs to nobody, not this checkout's ({REPO})")


def test_a_checkout_s_own_database_gets_no_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mrod.toml"
    config.write_text('[database]\npath = "mine.db"\n')
    assert main(["--config", str(config), "init"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "domain", "add", "fine.example", "--host", "mx.example.net"]) == 0
    assert "note" not in capsys.readouterr().err
