from __future__ import annotations

from pathlib import Path

import pytest

from mrod.infra import config
from mrod.infra.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mrod.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config.load(env={})
    assert cfg.source is None
    assert cfg.database.path == tmp_path / "var" / "mrod.db"
    assert cfg.lookupd.socketmap == "127.0.0.1:10101"
    assert cfg.lookupd.policy == "127.0.0.1:10102"
    assert cfg.admin.listen == "127.0.0.1:8380"


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[admin]\nlisten = "127.0.0.1:1"\n')
    other = tmp_path / "other.toml"
    other.write_text('[admin]\nlisten = "127.0.0.1:2"\n')
    assert config.load(env={}).admin.listen == "127.0.0.1:1"                       # ./mrod.toml
    assert config.load(env={"MROD_CONFIG": str(other)}).admin.listen == "127.0.0.1:2"
    explicit = tmp_path / "x.toml"
    explicit.write_text('[admin]\nlisten = "127.0.0.1:3"\n')
    assert config.load(explicit, env={"MROD_CONFIG": str(other)}).admin.listen == "127.0.0.1:3"


def test_design_example_loads(tmp_path: Path) -> None:
    path = write(tmp_path, """
[database]
path = "var/mrod.db"
[lookupd]
socketmap = "127.0.0.1:10101"        # "host:port" or "unix:/path"
policy = "127.0.0.1:10102"
[lookupd.tcp_table]                  # optional, one endpoint per map
relay_domains = "127.0.0.1:10111"
[admin]
listen = "127.0.0.1:8380"
""")
    cfg = config.load(path, env={})
    # relative paths are relative to the config file
    assert cfg.database.path == tmp_path / "var" / "mrod.db"
    assert cfg.lookupd.tcp_table == {"relay_domains": "127.0.0.1:10111"}


def test_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[lookupd]\nidle_timeout = 30\n')
    cfg = config.load(path, env={
        "MROD_LOOKUPD_IDLE_TIMEOUT": "12.5",
        "MROD_DATABASE_PATH": "/srv/m.db",
        "MROD_LOOKUPD_TCP_TABLE_TRANSPORT": "127.0.0.1:10112",
        "MROD_ADMIN_TRUST_PROXY": "yes",
        "MROD_LOOKUPD_SOCKETMAP": "unix:/run/mrod/socketmap",
    })
    assert cfg.lookupd.idle_timeout == 12.5
    assert cfg.database.path == Path("/srv/m.db")
    assert cfg.lookupd.tcp_table == {"transport": "127.0.0.1:10112"}
    assert cfg.admin.trust_proxy is True
    assert cfg.lookupd.socketmap == "unix:/run/mrod/socketmap"


@pytest.mark.parametrize(
    "text,message",
    [
        ("[lookupd\n", "mrod.toml"),
        ("[nosuch]\n", "unknown section [nosuch]"),
        ("[lookupd]\nsocketmapp = 'x'\n", "unknown key lookupd.socketmapp"),
        ("[lookupd]\nidle_timeout = 'soon'\n", "lookupd.idle_timeout"),
        ("[lookupd]\nidle_timeout = -1\n", "lookupd.idle_timeout: must be greater than 0"),
        ("[lookupd]\nsocketmap = 'localhost'\n", "lookupd.socketmap"),
        ("[lookupd]\nsocketmap = '127.0.0.1:70000'\n", "lookupd.socketmap"),
        ("[lookupd]\nsocketmap = 'unix:relative'\n", "absolute path"),
        ("[lookupd.tcp_table]\nrelay_domain = '127.0.0.1:1'\n", "unknown map 'relay_domain'"),
        ("[lookupd]\nrecipient_delimiter = 'ab'\n", "lookupd.recipient_delimiter"),
        ("[admin]\ntrust_proxy = 'yes'\n", "admin.trust_proxy"),
        ("database = 3\n", "database: must be a table"),
        ("[policy]\nexempt_networks = ['192.0.2.1/24']\n", "policy.exempt_networks: '192.0.2.1/24' has host bits set"),
        ("[policy]\nexempt_networks = ['mail.example']\n", "policy.exempt_networks"),
        ("[postfix]\npostsuper = 'unix:run/mrod-postsuper.sock'\n", "postfix.postsuper: unix: needs the helper"),
        ("[postfix]\npostsuper = ' '\n", "postfix.postsuper: must be a command line"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text), env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_bad_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MROD_LOOKUPD_MAX_CONNECTIONS"):
        config.load(write(tmp_path, ""), env={"MROD_LOOKUPD_MAX_CONNECTIONS": "many"})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "absent.toml", env={})


@pytest.mark.parametrize(
    "env,message",
    [
        ({"MROD_LOOKUPD_SOCKETMAPP": "x"}, "MROD_LOOKUPD_SOCKETMAPP names no setting"),
        ({"MROD_NOSUCH": "1"}, "MROD_NOSUCH names no setting"),
        ({"MROD_LOOKUPD_TCP_TABLE_RELAY_DOMAIN": "127.0.0.1:1"}, "unknown map 'relay_domain'"),
    ],
)
def test_environment_typos_are_errors(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, ""), env=env)


def test_environment_that_names_settings_is_accepted(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, ""), env={"MROD_CONFIG": "ignored-with-explicit", "PATH": "/bin",
                                                 "MROD_LOOKUPD_TCP_TABLE_TRANSPORT": "127.0.0.1:10112"})
    assert cfg.lookupd.tcp_table == {"transport": "127.0.0.1:10112"}


@pytest.mark.parametrize(
    "text,message",
    [
        ("[bind]\ncatalog_port = 70000\n", "bind.catalog_port: 70000 is out of range (1 to 65535)"),
        ("[bind]\nsub_label = 'a.b'\n", "bind.sub_label: 'a.b' must be one DNS label"),
        ("[bind]\nsub_label = '-x'\n", "bind.sub_label: '-x': label '-x' may hold only"),
        ("[checks]\nmx_names = ['mx2']\n", "checks.mx_names: 'mx2' needs at least 2 labels"),
        ("[checks]\nmx_names = ['mx 2.example.net']\n", "checks.mx_names: 'mx 2.example.net' contains white space"),
        ("[admin]\nbcrypt_rounds = 3\n", "admin.bcrypt_rounds: must be from 4 to 16"),
        ("[admin]\ncookie_secure = 'sometimes'\n", "admin.cookie_secure: must be one of"),
        ("[admin]\ntls_key = 'k.pem'\n", "admin.tls_cert and admin.tls_key: give both, or neither"),
        ("[admin]\ntls_key = 'k.pem'\ntls_cert = 'c.pem'\n", "admin.tls_cert:"),
    ],
)
def test_values_are_checked_at_load(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text), env={})
    assert message in str(info.value)


def test_names_are_normalised_as_everywhere(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, "[checks]\nmx_names = ['MX2.Example.NET.']\n[bind]\nsub_label = 'MAIL'\n"), env={})
    assert cfg.checks.mx_names == ("mx2.example.net",) and cfg.bind.sub_label == "mail"


def test_tls_files_resolve_against_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    cfg = config.load(write(tmp_path, "[admin]\ntls_key = 'k.pem'\ntls_cert = 'c.pem'\n"), env={})
    assert cfg.admin.tls_cert == "c.pem" and cfg.base_dir == tmp_path
