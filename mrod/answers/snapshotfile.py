"""A RouteSnapshot as JSON: the file lookupd on PostgreSQL keeps in the node's state directory
(lookupd/pgholder.py writes it from ``state``; ``read_file`` reads it back), so that lookupd
starts answering before PostgreSQL is reachable and the jobs can route while it is gone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mrod.answers.snapshot import ID_BITS, ID_MASK, RouteSnapshot, Shape
from mrod.answers.snapshotpolicy import PolicyIndex
from mrod.infra.engine import Target

if TYPE_CHECKING:
    from mrod.infra.config import Config

FILE = "lookupd-snapshot.json"


def file_for(cfg: Config) -> Path:
    """Where this node keeps lookupd's snapshot: its state directory ([node] state_dir)."""
    return cfg.state_dir / FILE


class UnusableFile(ValueError):
    """A snapshot file that is not lookupd's for this database; the message says why."""


def state(snap: RouteSnapshot) -> dict[str, Any]:
    """Everything, as plain data (copies: safe to serialise in another thread)."""
    found: dict[str, Any] = {
        "position": snap.position, "max_id": snap.max_id, "domains": dict(snap.domains),
        "shapes": [list(s) for s in snap.shapes], "relays": [[rid, *r] for rid, r in snap.relays.items()],
        "mta_sts": dict(snap.mta_sts)}
    if snap.listed is not None:
        found["recipients"] = {str(did): sorted(addresses) for did, addresses in snap.listed.items()}
    if snap.policy is not None:
        found["policy"] = snap.policy.state()
    return found


def from_state(state: dict[str, Any]) -> RouteSnapshot:
    """The snapshot ``state()`` described (a KeyError/TypeError/ValueError if malformed)."""
    snap = RouteSnapshot(recipients="recipients" in state)
    snap.position, snap.max_id = int(state["position"]), int(state["max_id"])
    if snap.listed is not None:
        snap.add_recipients((int(did), str(a)) for did, found in state["recipients"].items() for a in found)
    snap.shapes = [cast(Shape, tuple(s)) for s in state["shapes"]]
    snap.shape_ids = {shape: i for i, shape in enumerate(snap.shapes)}
    snap.set_relays(tuple(r) for r in state["relays"])
    # A file from before the policy was kept: the policy reads the database until a reload.
    snap.policy = PolicyIndex.from_state(state["policy"]) if "policy" in state else None
    snap.mta_sts = {str(k): str(v) for k, v in state.get("mta_sts", {}).items()}
    for name, packed in state["domains"].items():
        packed = int(packed)
        relay_id, host, port, protocol, tls = snap.shapes[packed >> ID_BITS][:5]
        snap.domains[str(name)] = packed
        if snap.shapes[packed >> ID_BITS][6]:
            snap.wide[str(name)] = packed
        if relay_id is None and host is not None and port is not None:
            snap.overrides.setdefault((host, port), {})[name] = (packed & ID_MASK, tls, protocol)
    return snap


def read_file(path: Path, database: str) -> tuple[RouteSnapshot, dict[str, Any]]:
    """The snapshot in ``path`` and the whole state read from it (journal cursor, last sync),
    for the database ``database`` names (Target.describe()). Raises OSError when it cannot be
    read, UnusableFile when it is not one to answer from."""
    with open(path, encoding="utf-8") as fh:
        try:
            state = json.load(fh)
        except ValueError as exc:
            raise UnusableFile(f"not JSON: {exc}") from None
    if not isinstance(state, dict) or state.get("database") != database:
        raise UnusableFile("it is of another database")
    if "recipients" not in state:
        raise UnusableFile("it is from an older mrod (no listed recipients)")
    try:
        return from_state(state), state
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise UnusableFile(f"malformed: {exc!r}") from None


def of_node(cfg: Config) -> RouteSnapshot:
    """This node's lookupd snapshot, from its file (``read_file_cached``): what the jobs route
    from while a shared PostgreSQL is gone. Raises OSError or UnusableFile."""
    return read_file_cached(file_for(cfg), Target.of(cfg.database).describe())


_cached: tuple[tuple[str, str, int, int], RouteSnapshot] | None = None


def read_file_cached(path: Path, database: str) -> RouteSnapshot:
    """``read_file``'s snapshot, read again only when the file changed (size or time): for
    the jobs that route from it while the database is gone, every interval."""
    global _cached
    info = os.stat(path)
    key = (str(path), database, info.st_mtime_ns, info.st_size)
    if _cached is None or _cached[0] != key:
        _cached = (key, read_file(path, database)[0])
    return _cached[1]
