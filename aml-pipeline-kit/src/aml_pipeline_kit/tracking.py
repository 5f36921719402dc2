"""MLflow tracking of local runs: one run per pipeline run, one child run per step.

This is how Azure ML shows a pipeline job in its MLflow-compatible store. The
store is local (``local.tracking_uri`` in config.yml); no server is needed.
Steps log into their child run through ``MLFLOW_RUN_ID``, exactly as they do on
Azure ML, where the service sets that variable.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .registry import sqlite_database

PIPELINE_STATUSES = {"completed": "FINISHED", "killed": "KILLED"}  # the local runner's words -> MLflow's
BATCH_SIZE = 100  # MLflow takes at most 100 parameters in one batch
DRIVER_PREFIX = re.compile(r"^\((\w+\.)*\w+\) ")  # "(sqlite3.OperationalError) database is locked"
# A migration script's own revision and the one it follows, as alembic reads them (module-level assignments).
REVISION_LINE = re.compile(r"^(revision|down_revision)(?:\s*:\s*[^=]+)?\s*=\s*(.+?)\s*$", re.MULTILINE)


def schema_head(versions: Path) -> str | None:
    """The newest revision among the database migration scripts in ``versions``, read from their ``revision`` and
    ``down_revision`` lines; None unless every script has one of each, plain strings, and they form a single line
    of revisions. Alembic finds the same by running every script: a quarter of a second on each store opening."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for script in versions.glob("*.py"):
        if script.name == "__init__.py":
            continue
        found = REVISION_LINE.findall(script.read_text(encoding="utf-8"))
        if sorted(name for name, _ in found) != ["down_revision", "revision"]:
            return None
        values = {name: ast.literal_eval(value) for name, value in found}
        revision, down_revision = values["revision"], values["down_revision"]
        if not isinstance(revision, str) or not isinstance(down_revision, str | None) or revision in revisions:
            return None
        revisions.add(revision)
        if down_revision is not None:
            followed.add(down_revision)
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 and followed <= revisions else None


@contextmanager
def quick_schema_check() -> Iterator[None]:
    """Opening an MLflow SQL store checks that its schema is the newest one: with the newest revision read by
    ``schema_head`` rather than by alembic, when it can tell. The check itself is unchanged."""
    from mlflow.store.db import utils

    original = getattr(utils, "_get_latest_schema_revision", None)
    try:
        head = schema_head(Path(utils.__file__).parents[1] / "db_migrations" / "versions")
    except (OSError, ValueError, SyntaxError):  # unreadable: alembic reads them as it always does
        head = None
    if original is None or head is None:
        yield
        return
    utils._get_latest_schema_revision = lambda: head
    try:
        yield
    finally:
        utils._get_latest_schema_revision = original


@contextmanager
def store_set_up(tracking_uri: str) -> Iterator[None]:
    """One process at a time sets up a SQLite store: creating its tables, or an experiment, in two local runs
    started at once would make one of them fail."""
    database = sqlite_database(tracking_uri)
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def create_with_artifact_root(tracking_uri: str, artifacts_dir: Path) -> None:
    """A SQLite store that does not exist yet, created with ``artifacts_dir`` as its artifact root. MLflow creates the
    store's Default experiment with it, its artifacts under the root it is given: by default ./mlruns of whatever
    folder the creating process ran in, not the project's or the job file's folder (a job that names no experiment
    runs under Default)."""
    database = sqlite_database(tracking_uri)
    if database is not None and not (database.is_file() and database.stat().st_size):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(tracking_uri, artifacts_dir.resolve().as_uri())


class StoreError(RuntimeError):
    """The MLflow store failed: locked by another process, the disk full, not a store at all. One line."""


Method = TypeVar("Method", bound=Callable[..., Any])


def first_line(error: BaseException) -> str:
    """An error's first line that says something; its type's name if none does."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def in_store(method: Method) -> Method:
    """``method`` of ``LocalTracking``, any failure of MLflow or its store raised as a ``StoreError`` naming it."""

    @functools.wraps(method)
    def failing_in_one_line(self: LocalTracking, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as error:  # SQLAlchemy's, sqlite3's, MLflow's own: each many lines long
            reason = DRIVER_PREFIX.sub("", first_line(error))
            raise StoreError(f"the MLflow store {self.tracking_uri} failed: {reason}") from None

    return failing_in_one_line  # type: ignore[return-value]


class LocalTracking:
    @in_store
    def __init__(self, tracking_uri: str, experiment_name: str, artifacts_dir: Path) -> None:
        self.tracking_uri = tracking_uri
        from mlflow.tracking import MlflowClient  # heavy: imported only when a run starts

        # The client opens the store, creating its tables if it is new.
        with store_set_up(tracking_uri), quick_schema_check():
            create_with_artifact_root(tracking_uri, artifacts_dir)
            self.client = MlflowClient(tracking_uri)
            experiment = self.client.get_experiment_by_name(experiment_name)
            self.experiment_id = (
                experiment.experiment_id
                if experiment
                else self.client.create_experiment(experiment_name, artifact_location=artifacts_dir.resolve().as_uri())
            )
        self.parent_run_id: str | None = None

    @in_store
    def start_pipeline(self, run_id: str, inputs: dict[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_id, tags={"runner": "local"})
        self.parent_run_id = run.info.run_id
        self._log(self.parent_run_id, {name: value for name, value in inputs.items() if value is not None}, {})
        return self.parent_run_id

    def _log(self, run_id: str, params: dict[str, Any], metrics: dict[str, float]) -> None:
        """Parameters and metrics a batch at a time (a write each would cost a commit each), as ``log_param`` and
        ``log_metric`` record them: a metric at step 0, stamped now."""
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        entities = [Param(name, str(value)) for name, value in params.items()]
        entities += [Metric(name, value, now, 0) for name, value in metrics.items()]
        for first in range(0, len(entities), BATCH_SIZE):
            batch = entities[first : first + BATCH_SIZE]
            self.client.log_batch(
                run_id,
                metrics=[entity for entity in batch if isinstance(entity, Metric)],
                params=[entity for entity in batch if isinstance(entity, Param)],
            )

    @in_store
    def end_pipeline(self, status: str) -> None:
        """End the pipeline's run, if one is open: ``completed``, ``killed`` (interrupted) or anything else (failed)."""
        if self.parent_run_id:
            self.client.set_terminated(self.parent_run_id, PIPELINE_STATUSES.get(status, "FAILED"))
            self.parent_run_id = None

    def _child(self, step: str, tags: dict[str, str] | None = None) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=step,
            tags={"mlflow.parentRunId": self.parent_run_id or "", **(tags or {})},
        )
        return run.info.run_id

    @in_store
    def start_step(self, step: str) -> tuple[str, dict[str, str]]:
        """A child run for the step, and the environment that makes the step log into it."""
        run_id = self._child(step)
        env = {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_RUN_ID": run_id}
        env.pop("MLFLOW_EXPERIMENT_NAME", None)
        return run_id, env

    @in_store
    def end_step(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    @in_store
    def record_reused_step(self, step: str, earlier_run_id: str | None) -> None:
        """A child run for a reused step, carrying the earlier run's parameters and metrics if this store holds it:
        runs/ may outlive the store the earlier run was tracked in (moved by MLFLOW_TRACKING_URI or config.yml, or
        deleted), and the step's reuse rests on its outputs, not on its MLflow run."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

        run_id = self._child(step, {"reused_from": earlier_run_id or "unknown"})
        if earlier_run_id:
            try:
                earlier = self.client.get_run(earlier_run_id).data
            except MlflowException as error:
                if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                    raise
            else:
                self._log(run_id, earlier.params, earlier.metrics)
        self.client.set_terminated(run_id, "FINISHED")
