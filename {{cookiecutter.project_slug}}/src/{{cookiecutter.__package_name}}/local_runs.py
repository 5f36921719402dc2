"""Runs on this machine: the project's pipelines (training, scoring and monitoring) through the template's local
runner, after its ``check``; and what they leave behind (the latest model, the rows to score)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aml_pipeline_kit.check import CheckFailed, Finding, Report, check_project
from aml_pipeline_kit.local_runner import Interrupted
from aml_pipeline_kit.plan_cache import PlanCache, model_plan, training_plan

from .settings import Settings

if TYPE_CHECKING:
    from azure.ai.ml.entities import PipelineJob

    from aml_pipeline_kit.local_runner import RunResult
    from aml_pipeline_kit.step_host import StepHost, TrackingTarget

SCORE_INPUT_DIR = "score-input"  # under runs/: the project's CSV without its target, the default rows to score


class UsageError(ValueError):
    """A command cannot do what was asked; the message says what to do instead."""


def check_report(settings: Settings) -> Report:
    """``check`` on the project at ``settings.root``: its pipelines as pipeline.py builds them, and the monitoring
    schedule's spec."""

    def build() -> dict[str, PipelineJob]:
        from . import pipeline  # azure-ai-ml: seconds to import, paid only when a check runs

        return pipeline.checked_graphs(settings)

    def schedule_findings() -> list[Finding]:
        from .azure_ml import schedule_findings

        return schedule_findings(settings)

    pipeline_file = Path(__file__).with_name("pipeline.py")
    return check_project(settings.root, build, pipeline_file, plan_cache(settings), schedule_findings)


def plan_cache(settings: Settings) -> PlanCache:
    """The plans and check's verdict kept under runs/ for as long as what they were built from is unchanged."""
    return PlanCache(settings.root, settings.local_runs_dir / ".plans", [Path(__file__).parent])


def passed_check(settings: Settings) -> None:
    """``check`` before a run or a submission: print its summary, or raise ``CheckFailed``."""
    report = check_report(settings)
    if report.findings:
        raise CheckFailed(report)
    print(report.summary())


def tracking_target(settings: Settings) -> TrackingTarget:
    from aml_pipeline_kit.step_host import TrackingTarget

    return TrackingTarget(
        settings.local_tracking_uri, settings.setting("azure", "experiment_name"), settings.local_artifacts_dir
    )


def start_step_host(settings: Settings) -> StepHost:
    """A warm step host for this project's components: it serves any number of runs until closed."""
    from aml_pipeline_kit.step_host import StepHost

    components = sorted(path for path in (settings.root / "components").iterdir() if path.is_dir())
    return StepHost(tracking_target(settings), components)


def run_locally(
    settings: Settings,
    kind: dict[str, Any],
    build: Callable[[], PipelineJob],
    reuse: bool = True,
    check: bool = False,
    host: StepHost | None = None,
    max_parallel: int | None = None,
) -> RunResult:
    """Build a pipeline job with ``build()`` (unless the plan cache holds its ``kind``) and run its steps on this
    machine; raises ``StepFailed`` on a failed step.

    With ``check``, the project is checked first and ``CheckFailed`` raised on a finding. Without a
    ``host``, one is started for this run, and warms up while this process builds the graph.
    """
    from aml_pipeline_kit.local_runner import LocalRunner

    own_host = host is None
    host = host or start_step_host(settings)
    try:
        if check:  # while the host warms up; the check's azure-ai-ml import serves the build below too
            passed_check(settings)
        plan = plan_cache(settings).plan(kind, build)
        parallel = {"parallel": max_parallel} if max_parallel else {}
        return LocalRunner(settings.local_runs_dir, host, tracking_target(settings), reuse=reuse, **parallel).run(plan)
    except Interrupted:
        host.interrupt()  # whether a run had started or not, nothing may outlive the command
        raise
    finally:
        if own_host:
            host.close()


def run_pipeline_locally(
    settings: Settings,
    overrides: dict[str, Any],
    reuse: bool = True,
    check: bool = False,
    host: StepHost | None = None,
    max_parallel: int | None = None,
    tune: bool = False,
) -> RunResult:
    """The training pipeline on this machine, with config.yml's parameters unless ``overrides`` sets them; with
    ``tune``, the tuning pipeline (its sweeps' trials side by side, up to ``max_parallel``)."""
    settings.pipeline_inputs_with(overrides)  # a mistyped parameter fails before anything starts

    def build() -> PipelineJob:
        from .pipeline import local_pipeline  # azure-ai-ml: seconds to import, while the step host warms up

        return local_pipeline(settings, overrides, tune)

    kind = {**training_plan(overrides), "kind": "tuning"} if tune else training_plan(overrides)
    return run_locally(settings, kind, build, reuse, check, host, max_parallel)


def score_locally(
    settings: Settings, model: Path, data: Path, check: bool = False, host: StepHost | None = None
) -> RunResult:
    """The scoring pipeline on this machine: ``model`` predicts every row of ``data``."""

    def build() -> PipelineJob:
        from .pipeline import local_score_pipeline  # azure-ai-ml: seconds to import, while the step host warms up

        return local_score_pipeline(settings, model, data)

    return run_locally(settings, model_plan("scoring", model, data), build, check=check, host=host)


def monitor_locally(
    settings: Settings, model: Path, batch: Path, check: bool = False, host: StepHost | None = None
) -> RunResult:
    """The monitoring pipeline on this machine: ``batch`` and ``model``'s predictions on it vs. the training data."""

    def build() -> PipelineJob:
        from .pipeline import local_monitor_pipeline  # azure-ai-ml: seconds to import, while the step host warms up

        return local_monitor_pipeline(settings, model, batch)

    return run_locally(settings, model_plan("monitoring", model, batch), build, check=check, host=host)


def local_model_and_rows(
    settings: Settings, model: str | None, data: str | None, rows: Callable[[], Path]
) -> tuple[Path, Path]:
    """``--model`` (default: the latest local run's) and ``--data`` (default: ``rows()``), checked to exist."""
    model_dir = Path(model) if model else latest_local_model(settings)
    data_file = Path(data) if data else rows()
    if not (model_dir / "MLmodel").is_file():
        raise UsageError(f"--model {model_dir}: not an MLflow model folder (it has no MLmodel file)")
    if not data_file.is_file():
        raise UsageError(f"--data {data_file}: no such file")
    return model_dir, data_file


def latest_local_model(settings: Settings) -> Path:
    """The model of the newest completed local run (run ids start with their start time, so they sort by it)."""
    for summary in sorted(settings.local_runs_dir.glob("*/run.json"), reverse=True):
        run = json.loads(summary.read_text())
        model = run["outputs"].get("model")
        if run["status"] == "completed" and model and Path(model).is_dir():
            return Path(model)
    raise UsageError(f"no completed local run with a model in {settings.local_runs_dir}: `make run` trains one")


def rows_without_target(settings: Settings) -> Path:
    """The project's CSV without its target column, written under runs/: the rows a model is asked to score.

    Copied field by field, so every value reaches the model exactly as the CSV has it.
    """
    source, target = settings.local_data_path, settings.setting("target_column")
    if not source.is_file():
        raise UsageError(f"the project's CSV {source} is gone (aml/data.yml names it): restore it, or pass --data")
    destination = settings.local_runs_dir / SCORE_INPUT_DIR / source.name
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{source.name}.{os.getpid()}")  # a concurrent `score` never reads half a file
    with (
        source.open(newline="", encoding="utf-8-sig") as original,
        partial.open("w", newline="", encoding="utf-8") as out,
    ):
        rows = csv.reader(original)
        header = next(rows)
        kept = [index for index, name in enumerate(header) if name != target]
        writer = csv.writer(out)
        writer.writerow([header[index] for index in kept])
        writer.writerows([row[index] if index < len(row) else "" for index in kept] for row in rows)
    partial.replace(destination)
    return destination
