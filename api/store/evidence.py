"""What the store recorded about each incident's evidence, read-only, for `safewatch evidence verify --database`.

`incidents.evidence_sha256` is the sha256 of the exact bytes of the incident's `manifest.json` as it was written
(`pipelines/camera/evidence.py`: the `closed` event leaves with `write_manifest(...).sha256`, and
`api/store/incidents.py` keeps it). It is None until the incident's closed event is stored, and when the manifest
could not be written.

The database is opened with a plain engine and only read: no migration, no file created, no pragma changed (the
service's `make_engine` would create a missing SQLite file and switch it to WAL). Every failure becomes
`StoreUnavailable`, whose message names the URL with its credentials redacted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from api.store.models import Incident
from vision.redact import redact_url

_CHUNK = 500  # ids per IN (...) query, well below SQLite's variable limit
_COLUMNS = (
    Incident.id,
    Incident.camera_id,
    Incident.status,
    Incident.keep,
    Incident.ended_at,
    Incident.evidence_sha256,
)


class StoreUnavailable(Exception):
    """The store cannot be read; the message is one line naming the redacted URL and why."""


@dataclass(frozen=True, slots=True)
class RecordedEvidence:
    """One incident row, as far as its evidence is concerned."""

    incident_id: str
    camera_id: str
    status: str
    keep: bool
    ended_at: datetime | None
    evidence_sha256: str | None  # sha256 of the manifest.json bytes; None: no evidence recorded (yet)


def recorded_evidence(url: str, incident_ids: Collection[str] = ()) -> dict[str, RecordedEvidence]:
    """Every incident of the store at `url` that has recorded evidence, plus those of `incident_ids` that exist at
    all (with or without evidence), by incident id. Raises `StoreUnavailable`."""
    with read_only_connection(url) as conn:
        return _read(conn, incident_ids)


@contextmanager
def read_only_connection(url: str) -> Iterator[Connection]:
    """A plain connection to the safewatch store at `url`, opened as the module docstring says (nothing created or
    changed; also used by `safewatch dataset export`). Raises `StoreUnavailable`, also for a database error while
    the connection is used."""
    shown = redact_url(url)
    engine = _engine(url, shown)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(Incident.__tablename__):
                raise StoreUnavailable(f"{shown}: not a safewatch store (it has no incidents table)")
            yield conn
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"{shown}: {_reason(exc)}") from None
    finally:
        engine.dispose()


def _engine(url: str, shown: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"{shown}: not a database URL (e.g. sqlite:///data/safewatch.db)") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise StoreUnavailable(f"{shown}: not a database file")
            if not Path(parsed.database).is_file():  # SQLite would create an empty one
                raise StoreUnavailable(f"{shown}: no such database file")
            return create_engine(parsed, connect_args={"timeout": 30})
        if parsed.get_backend_name() == "postgresql":
            return create_engine(parsed, connect_args={"connect_timeout": 10})
        return create_engine(parsed)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreUnavailable(f"{shown}: unsupported database driver ({exc})".splitlines()[0]) from None


def _read(conn: Connection, incident_ids: Collection[str]) -> dict[str, RecordedEvidence]:
    rows = list(conn.execute(select(*_COLUMNS).where(Incident.evidence_sha256.is_not(None))))
    found = {r.id for r in rows}
    rest = sorted(set(incident_ids) - found)
    for i in range(0, len(rest), _CHUNK):
        rows += conn.execute(select(*_COLUMNS).where(Incident.id.in_(rest[i : i + _CHUNK])))
    return {
        r.id: RecordedEvidence(r.id, r.camera_id, r.status, bool(r.keep), r.ended_at, r.evidence_sha256) for r in rows
    }


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's first line (connection refused, authentication failed, ...), redacted; never a traceback."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return redact_url(first)
