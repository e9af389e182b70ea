"""Test harness shared by every tier: real components (Postfix, named, Chromium) started on
free loopback ports, and the rule that under CI they must run, never skip."""

from __future__ import annotations

import os
import shutil
import socket
import time

import pytest

IN_CI = bool(os.environ.get("CI"))


def require(condition: bool, reason: str) -> None:
    """Skip when a real component is unavailable — except under CI, where that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test, but: {reason}", pytrace=False)
    pytest.skip(reason)


def require_root(what: str) -> None:
    require(os.geteuid() == 0, f"{what} needs root")


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)
    require(path is not None, f"{name} not found (apt-get install {package}, or run `make test` as root)")
    return path  # type: ignore[return-value]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something listens on 127.0.0.1:port; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while not accepts(port):
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on 127.0.0.1:{port}")
        time.sleep(0.05)
