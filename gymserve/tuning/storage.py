"""Where a study lives: an Optuna RDB storage, SQLite in the output folder unless a URL is given.

Any SQLAlchemy URL Optuna supports works (sqlite:///path, postgresql://..., mysql://...), so
processes on several machines can share one study. Trials record a heartbeat while they run; a
trial whose tuner died without a word (power loss, SIGKILL) is marked failed by the next tuner
that opens the study once its heartbeat is older than the grace period.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from gymserve.tuning.errors import TuningError

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

STUDY_FILE = "study.db"
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
_CREATION_RETRIES = 3
_SQLITE_BUSY_TIMEOUT = 60.0  # seconds a process waits for another's write to the same SQLite file


class StorageError(TuningError):
    """The storage URL cannot be opened."""


def default_storage_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / STUDY_FILE}"


def open_storage(url: str) -> RDBStorage:
    """The storage at `url`, created if new; a StorageError says why it cannot be opened."""
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    _ignore_heartbeat_warnings()
    engine_kwargs = {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT}} if url.startswith("sqlite") else {}

    def connect() -> RDBStorage:
        return RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
        )

    try:
        for _ in range(_CREATION_RETRIES):
            try:
                return connect()
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as error:
                if not _lost_creation_race(error):
                    raise
                time.sleep(1.0)
        return connect()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as error:
        raise StorageError(f"cannot open study storage {url!r}: {_first_line(error)}") from None


def _lost_creation_race(error: Exception) -> bool:
    """Another process was creating the tables of the same new storage (it wins, we load them)."""
    signs = ("already exists", "UNIQUE constraint failed", "database is locked")
    return any(sign in str(error) for sign in signs)


def _ignore_heartbeat_warnings() -> None:
    """Optuna calls heartbeats experimental and expects them with Study.optimize; we use them with
    ask and tell, recording them ourselves (tuner.py)."""
    for message in (
        r"Argument ``(heartbeat_interval|grace_period)`` is an experimental",
        r"optuna\.storages\._heartbeat\.fail_stale_trials is experimental",
        r"Heartbeat of storage is supposed to be used with Study\.optimize",
    ):
        warnings.filterwarnings("ignore", message=message)


def _first_line(error: Exception) -> str:
    """SQLAlchemy appends SQL and a help link on later lines; the first says what went wrong."""
    return str(error).strip().splitlines()[0]
