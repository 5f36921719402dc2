"""What a local MLflow model registry holds of one model, read without MLflow: the state a step that decides from the
registry (its component tagged ``plan.REGISTRY_TAG``) is reused by.

Importing MLflow costs a second or more, which a run whose every step is reused must not pay: a SQLite store is read
with ``sqlite3``, every row its registry tables hold of the model (versions, their tags, the model's tags and
aliases), whatever columns the installed MLflow gives them. A store it cannot read so (a server, a file store, a
relative path, tables it does not know) has no state here, and such a step runs every time, as on Azure ML.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

SQLITE_PREFIX = "sqlite:///"
REGISTRY_TABLES = (
    "registered_models",
    "registered_model_tags",
    "registered_model_aliases",
    "model_versions",
    "model_version_tags",
)
LOCKED_SECONDS = 5.0  # a store another run is writing to: waited for this long, then the step runs


def registry_uri(tracking_uri: str, environ: Mapping[str, str]) -> str:
    """The registry the steps register in: MLflow's ``MLFLOW_REGISTRY_URI`` if set, else their tracking store."""
    return environ.get("MLFLOW_REGISTRY_URI") or tracking_uri


def registry_state(uri: str, model_name: str) -> str | None:
    """A digest of every row the registry at ``uri`` holds of ``model_name``; None if it cannot be read without
    MLflow. A store that does not exist yet holds nothing: the first step to use it creates it empty."""
    database = sqlite_file(uri)
    if database is None:
        return None
    rows: dict[str, list[str]] = {table: [] for table in REGISTRY_TABLES}
    if database.exists():
        try:
            with closing(read_only(database)) as connection:
                for table in REGISTRY_TABLES:
                    cursor = connection.execute(f"SELECT * FROM {table} WHERE name = ?", (model_name,))
                    columns = [column[0] for column in cursor.description]
                    records = (dict(zip(columns, row, strict=True)) for row in cursor)
                    rows[table] = sorted(json.dumps(record, default=str) for record in records)
        except sqlite3.Error:  # not MLflow's tables, or locked for longer than a run waits
            return None
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def sqlite_database(uri: str) -> Path | None:
    """The database file of a SQLite MLflow store (``sqlite:///<path>``); None for any other store."""
    return Path(uri.removeprefix(SQLITE_PREFIX)) if uri.startswith(SQLITE_PREFIX) else None


def sqlite_file(uri: str) -> Path | None:
    """The database file of a SQLite store given by absolute path (``sqlite:////abs/mlruns.db``); None otherwise."""
    path = sqlite_database(uri) if "?" not in uri else None
    return path if path is not None and path.is_absolute() else None


def read_only(database: Path) -> sqlite3.Connection:
    """A connection that can neither write to the store nor create it."""
    return sqlite3.connect(f"file:{quote(str(database))}?mode=ro", uri=True, timeout=LOCKED_SECONDS)
