"""Logging that a hostile or broken client cannot turn into a flood."""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """Lets through at most ``burst`` messages per ``per`` seconds; counts what it drops and
    says so with the next message that passes."""

    def __init__(self, logger: logging.Logger, burst: int = 20, per: float = 10.0) -> None:
        self.logger = logger
        self.burst = burst
        self.per = per
        self._window = 0.0
        self._sent = 0
        self._dropped = 0

    def _allow(self) -> bool:
        now = time.monotonic()
        if now - self._window >= self.per:
            self._window, self._sent = now, 0
        if self._sent < self.burst:
            self._sent += 1
            return True
        self._dropped += 1
        return False

    def log(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        if not self._allow():
            return
        if self._dropped:
            msg = f"{msg} ({self._dropped} similar messages suppressed)"
            self._dropped = 0
        self.logger.log(level, msg, *args, exc_info=exc_info)

    def warning(self, msg: str, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def exception(self, msg: str, *args: object) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=True)
