"""mrod's postsuper helper for real: mrod.operations.postsuperd started as root per connection
on a socket with the units' owner, group, mode and hardening (tests.harness.socketunit), a real
Postfix holding deferred mail (its primary down). Hold and release through the socket with the
CLI; bad requests refused with nothing done; a member of the socket's group allowed, anyone
else not; no helper — one line naming the socket and the unit."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.operations import postsuper
from mrod.operations.postqueue import QueueUnavailable
from tests.data import seed_file_sync
from tests.harness import free_port, require_root
from tests.harness.socketunit import AcceptingSocket
from tests.ops.test_postfix_ops import SLOW_RETRIES, add_sections
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix

GROUP = "mail"          # the socket's group here (the package's is mrod)
HELPER = [sys.executable, "-I", "-m", "mrod.operations.postsuperd"]


@pytest.fixture(scope="module")
def helper(module_mrod_factory, module_postfix_factory):
    require_root("the helper runs postsuper as root")
    mrod = module_mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": free_port()}],
                   domains=[{"name": "a.example", "relay": "primary"}])
    mrod.start()
    postfix = module_postfix_factory(mrod.config, settings=SLOW_RETRIES)
    # Under /tmp with 0755 (pytest's own tmp is root's 0700): user nobody must reach the socket.
    where = Path(tempfile.mkdtemp(prefix="mrod-postsuper-", dir="/tmp"))
    where.chmod(0o755)
    unit = AcceptingSocket(where / "postsuper.sock", where / "helper.log", group=GROUP, exec_start=HELPER)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc), "postsuper": f"unix:{unit.path}"}})
    for i in range(3):
        postfix.smtp([f"x{i}@a.example"], payload(f"m{i}", f"x{i}@a.example"))
    postfix.wait_for_queue(lambda q: len(q) == 3 and all(e["queue_name"] == "deferred" for e in q))
    yield mrod, cfg, postfix, unit
    unit.close()
    shutil.rmtree(where)


def queues(postfix) -> dict[str, str]:
    return {e["queue_id"]: e["queue_name"] for e in postfix.queue()}


def ask(path: Path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(path))
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        with conn.makefile("rb") as reply:
            return reply.readline()


def test_hold_and_release_with_the_cli_through_the_helper(helper) -> None:
    mrod, _, postfix, unit = helper
    qid = sorted(queues(postfix))[0]
    held = mrod.cli("queue", "hold", qid)
    assert queues(postfix)[qid] == "hold", held.stdout
    mrod.cli("queue", "release", qid)
    assert queues(postfix)[qid] != "hold"
    log = unit.log.read_text()
    assert f"hold 1 id(s) -c {postfix.etc}: OK 1" in log and f"release 1 id(s) -c {postfix.etc}: OK 1" in log


@pytest.mark.parametrize("make_request, reason", [
    (lambda etc, qid: b"chmod\n" + qid + b"\n\n", b"unknown action"),
    (lambda etc, qid: b"hold " + etc + b"\n" + qid + b";rm\n\n", b"is not a Postfix queue id"),
    (lambda etc, qid: b"hold " + etc + b"\n" + qid + b"\n", b"empty line"),                 # unfinished
    (lambda etc, qid: b"hold " + etc + b"/../etc\n" + qid + b"\n\n", b"plain absolute path"),
    (lambda etc, qid: b"hold /tmp\n" + qid + b"\n\n", b"not root's alone"),                # anyone's /tmp
    (lambda etc, qid: b"hold /nonexistent\n" + qid + b"\n\n", b"not a directory"),
    (lambda etc, qid: b"hold " + etc + b"\n\n", b"no queue ids"),
])
def test_bad_requests_are_refused_and_nothing_is_done(helper, make_request, reason) -> None:
    _, _, postfix, unit = helper
    before = queues(postfix)
    qid = sorted(before)[1].encode()
    reply = ask(unit.path, make_request(str(postfix.etc).encode(), qid))
    assert reply.startswith(b"ERR ") and reason in reply, reply
    assert queues(postfix) == before


def test_a_linked_config_dir_is_refused(helper, tmp_path: Path) -> None:
    _, _, postfix, unit = helper
    link = Path(tempfile.mkdtemp(dir="/tmp")) / "etc"
    try:
        link.symlink_to(postfix.etc)
        qid = sorted(queues(postfix))[1]
        assert b"symbolic links" in ask(unit.path, f"hold {link}\n{qid}\n\n".encode())
        assert queues(postfix)[qid] == "deferred"
    finally:
        shutil.rmtree(link.parent)


def test_an_id_no_longer_queued_counts_nothing(helper) -> None:
    _, _, postfix, unit = helper
    assert ask(unit.path, f"hold {postfix.etc}\nABCDEF0123\n\n".encode()) == b"OK 0\n"


CLIENT = """
import asyncio, sys
from mrod.infra import config
from mrod.operations import postsuper
cfg = config.from_dict({"postfix": {"postsuper": sys.argv[1], "config_dir": sys.argv[2]}})
try:
    print(asyncio.run(postsuper.act(cfg, sys.argv[3], [sys.argv[4]])).done)
except postsuper.QueueUnavailable as exc:
    sys.exit(str(exc))
"""


def as_nobody(groups: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", f"--groups={groups}", sys.executable,
                           "-c", CLIENT, *args], capture_output=True, text=True, timeout=60, cwd="/")


def test_a_member_of_the_sockets_group_may_ask_and_others_may_not(helper) -> None:
    _, cfg, postfix, unit = helper
    qid = sorted(queues(postfix))[2]
    args = (cfg.postfix.postsuper, cfg.postfix.config_dir)
    refused = as_nobody("nogroup", *args, "hold", qid)
    assert refused.returncode == 1 and queues(postfix)[qid] == "deferred"
    assert refused.stderr.strip() == (f"the postsuper helper at {unit.path} refused mrod's user (permission "
                                      "denied: its socket is for group mrod, mrod-postsuper.socket)")
    member = as_nobody(GROUP, *args, "hold", qid)
    assert member.returncode == 0 and member.stdout.strip() == "1", member.stderr
    assert queues(postfix)[qid] == "hold"
    assert as_nobody(GROUP, *args, "release", qid).stdout.strip() == "1"
    assert queues(postfix)[qid] == "deferred"


def test_no_helper_is_one_line_naming_the_socket_and_the_unit(helper) -> None:
    mrod, _, postfix, _ = helper
    qid = sorted(queues(postfix))[0]
    missing = "/run/mrod-test-no-such.sock"
    cfg = configmod.from_dict({"postfix": {"postsuper": f"unix:{missing}"}})
    with pytest.raises(QueueUnavailable) as caught:
        asyncio.run(postsuper.act(cfg, "hold", [qid]))
    assert str(caught.value) == (f"no postsuper helper at {missing}: start it "
                                 "(systemctl enable --now mrod-postsuper.socket)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    cli = subprocess.run(mrod.command("queue", "hold", qid), capture_output=True, text=True, timeout=60,
                         env={**env, "MROD_POSTFIX_POSTSUPER": f"unix:{missing}"})
    assert cli.returncode == 1 and missing in cli.stderr and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert queues(postfix)[qid] == "deferred"


def test_every_action_runs_under_the_units_capabilities(helper) -> None:
    # Last in this module: the messages go (expired, deleted; requeued comes back with a new id).
    _, _, postfix, unit = helper
    first, second = sorted(queues(postfix))[:2]
    etc = postfix.etc
    for action, qid in (("expire", first), ("delete", first), ("requeue", second)):
        assert ask(unit.path, f"{action} {etc}\n{qid}\n\n".encode()) == b"OK 1\n", (action, unit.log.read_text())
    assert first not in queues(postfix)


def test_the_helper_runs_only_as_root() -> None:
    done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *HELPER],
                          input=b"hold\nABCDE\n\n", capture_output=True, timeout=60, cwd="/")
    assert done.returncode == 1 and done.stdout == b"" and b"must run as root" in done.stderr


def test_a_client_that_never_finishes_is_answered_and_left() -> None:
    require_root("the helper runs only as root")
    # The read bound shortened from 30 s: stdin stays open, nothing more comes.
    code = "from mrod.operations import postsuperd as d; d.READ_SECONDS = 1; raise SystemExit(d.main())"
    with subprocess.Popen([sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, cwd="/") as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"hold\nABCDE\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"ERR no complete request within 1s\n"
        assert proc.wait(10) == 1


def test_siblings_without_a_postsuper_path() -> None:
    cfg = configmod.from_dict({"postfix": {"postsuper": "unix:/run/mrod-postsuper.sock"}})
    assert postsuper.sibling(cfg, "postkick") == "/usr/sbin/postkick"
    cfg = configmod.from_dict({"postfix": {"postsuper": "unix:/run/x.sock", "postqueue": "/opt/pf/sbin/postqueue"}})
    assert postsuper.sibling(cfg, "postconf") == "/opt/pf/sbin/postconf"
