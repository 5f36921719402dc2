# Maintained by the template this project was rendered from, at the version in aml_pipeline_kit/__init__.py:
# update with `cruft update`, don't edit here (the template's own tests cover this file).
"""MLflow tracking of local runs: one run per pipeline run, one child run per step.

This is how Azure ML shows a pipeline job in its MLflow-compatible store. The
store is local (``local.tracking_uri`` in config.yml); no server is needed.
Steps log into their child run through ``MLFLOW_RUN_ID``, exactly as they do on
Azure ML, where the service sets that variable.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PIPELINE_STATUSES = {"completed": "FINISHED", "killed": "KILLED"}  # the local runner's words -> MLflow's


@contextmanager
def store_set_up(tracking_uri: str) -> Iterator[None]:
    """One process at a time sets up a SQLite store: creating its tables, or an experiment, in two local runs
    started at once would make one of them fail."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        yield
        return
    database = Path(tracking_uri.removeprefix(prefix))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class LocalTracking:
    def __init__(self, tracking_uri: str, experiment_name: str, artifacts_dir: Path) -> None:
        from mlflow.tracking import MlflowClient  # heavy: imported only when a run starts

        self.tracking_uri = tracking_uri
        with store_set_up(tracking_uri):  # the client opens the store, creating its tables if it is new
            self.client = MlflowClient(tracking_uri)
            experiment = self.client.get_experiment_by_name(experiment_name)
            self.experiment_id = (
                experiment.experiment_id
                if experiment
                else self.client.create_experiment(experiment_name, artifact_location=artifacts_dir.resolve().as_uri())
            )
        self.parent_run_id: str | None = None

    def start_pipeline(self, run_id: str, inputs: dict[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_id, tags={"runner": "local"})
        self.parent_run_id = run.info.run_id
        for name, value in inputs.items():
            if value is not None:
                self.client.log_param(self.parent_run_id, name, value)
        return self.parent_run_id

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

    def start_step(self, step: str) -> tuple[str, dict[str, str]]:
        """A child run for the step, and the environment that makes the step log into it."""
        run_id = self._child(step)
        env = {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_RUN_ID": run_id}
        env.pop("MLFLOW_EXPERIMENT_NAME", None)
        return run_id, env

    def end_step(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def record_reused_step(self, step: str, earlier_run_id: str | None) -> None:
        """A child run for a reused step, carrying the earlier run's parameters and metrics."""
        run_id = self._child(step, {"reused_from": earlier_run_id or "unknown"})
        if earlier_run_id:
            earlier = self.client.get_run(earlier_run_id).data
            for name, value in earlier.params.items():
                self.client.log_param(run_id, name, value)
            for name, value in earlier.metrics.items():
                self.client.log_metric(run_id, name, value)
        self.client.set_terminated(run_id, "FINISHED")
