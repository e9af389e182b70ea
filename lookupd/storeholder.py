"""Keeps one read-only store open, and reopens it when the database file was replaced
(a restore, or a corrupt copy moved into place) so answers never come from a file that is gone."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Generic, TypeVar

from mrod.infra.errors import DatabaseNotReady
from mrod.answers.routestore import RouteStore

S = TypeVar("S", bound=RouteStore)


class StoreHolder(Generic[S]):
    def __init__(self, db_path: Path, kind: type[S]) -> None:
        self.db_path = Path(db_path)
        self.kind = kind
        self._store: S | None = None
        self._identity: tuple[int, int] | None = None

    def get(self) -> S:
        try:
            st = os.stat(self.db_path)
        except FileNotFoundError:
            self.close()
            raise DatabaseNotReady(f"database {self.db_path} does not exist") from None
        identity = (st.st_dev, st.st_ino)
        if self._store is None or identity != self._identity:
            self.close()
            self._store = self.kind.open(self.db_path, busy_timeout_ms=0)
            self._identity = identity
        return self._store

    def close(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except sqlite3.Error:
                pass
            self._store = None
            self._identity = None
