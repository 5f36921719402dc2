"""Runs on this machine: the project's pipelines (training, tuning, scoring and monitoring) through the template's
local runner, after its ``check``; what they leave behind (the latest model, the rows to score); and the local side
of the commands (``check``, ``run --local``, ``tune --local``, ``score --local``, ``monitor --local``): what they
print, and their exit code."""

from __future__ import annotations

import csv
import gc
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aml_pipeline_kit.check import CheckFailed, Finding, Report, check_project
from aml_pipeline_kit.check.report import key_pattern, line_of
from aml_pipeline_kit.config_files import read_yaml
from aml_pipeline_kit.local_runner import Interrupted
from aml_pipeline_kit.plan_cache import PlanCache, model_plan, training_plan
from aml_pipeline_kit.records import read_record, written_whole

from .settings import Settings, model_name_problem
from .tuning import tuning_findings, write_tuned

if TYPE_CHECKING:
    import argparse

    from azure.ai.ml.entities import PipelineJob

    from aml_pipeline_kit.local_runner import RunResult, StepFailed
    from aml_pipeline_kit.step_host import StepHost, TrackingTarget

METRIC_ROWS = (("RMSE", "rmse"), ("MAE", "mae"), ("R²", "r2"))
SHOWN_PREDICTIONS = 5
SCORE_INPUT_DIR = "score-input"  # under runs/: the project's CSV without its target, the default rows to score


class UsageError(ValueError):
    """A command cannot do what was asked; the message says what to do instead."""


def check_report(settings: Settings) -> Report:
    """``check`` on the project at ``settings.root``: its pipelines as pipeline.py builds them, the monitoring
    schedule's spec, config.yml's tuning settings, and the name the model is registered under."""

    def build() -> dict[str, PipelineJob]:
        from . import pipeline  # azure-ai-ml: seconds to import, paid only when a check runs

        return pipeline.checked_graphs(settings)

    def project_findings() -> list[Finding]:
        from .azure_monitoring import schedule_findings

        return [*schedule_findings(settings), *tuning_findings(settings), *model_name_findings(settings)]

    pipeline_file = Path(__file__).with_name("pipeline.py")
    return check_project(settings.root, build, pipeline_file, plan_cache(settings), project_findings)


def model_name_findings(settings: Settings) -> list[Finding]:
    """config.yml's azure.registered_model_name by Azure ML's rule: the register step would fail on it after training
    (a local run's registry takes more)."""
    name = settings.setting("azure", "registered_model_name")
    problem = model_name_problem(name)
    if problem is None:
        return []
    config = settings.root / "config.yml"
    message, hint = f"azure.registered_model_name: {name!r} is invalid: {problem}", "rename the model"
    return [Finding(config, "model-name", message, hint, line_of(config, key_pattern("registered_model_name")))]


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
    return run_with_model(settings, "scoring", model, data, check, host)


def monitor_locally(
    settings: Settings, model: Path, batch: Path, check: bool = False, host: StepHost | None = None
) -> RunResult:
    """The monitoring pipeline on this machine: ``batch`` and ``model``'s predictions on it vs. the training data."""
    return run_with_model(settings, "monitoring", model, batch, check, host)


def run_with_model(
    settings: Settings,
    kind: Literal["scoring", "monitoring"],
    model: Path,
    rows: Path,
    check: bool,
    host: StepHost | None,
) -> RunResult:
    """A graph of pipeline.py that puts ``model`` to work on ``rows``, on this machine."""

    def build() -> PipelineJob:
        from . import pipeline  # azure-ai-ml: seconds to import, while the step host warms up

        graphs = {"scoring": pipeline.local_score_pipeline, "monitoring": pipeline.local_monitor_pipeline}
        return graphs[kind](settings, model, rows)

    return run_locally(settings, model_plan(kind, model, rows), build, check=check, host=host)


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
        model = read_record(summary, "run summary", completed_model)
        if model and Path(model).is_dir():
            return Path(model)
    raise UsageError(f"no completed local run with a model in {settings.local_runs_dir}: `make run` trains one")


def completed_model(run: dict[str, Any]) -> str | None:
    """The model folder a run summary names, if the run completed."""
    model = run["outputs"].get("model")
    return model if run["status"] == "completed" and isinstance(model, str) else None


def rows_without_target(settings: Settings) -> Path:
    """The project's CSV without its target column, written under runs/: the rows a model is asked to score.

    Copied field by field, so every value reaches the model exactly as the CSV has it.
    """
    source, target = settings.local_data_path, settings.setting("target_column")
    if not source.is_file():
        raise UsageError(f"the project's CSV {source} is gone (aml/data.yml names it): restore it, or pass --data")
    destination = settings.local_runs_dir / SCORE_INPUT_DIR / source.name
    destination.parent.mkdir(parents=True, exist_ok=True)
    with (  # whole or not at all: a concurrent `score` never reads half a file
        source.open(newline="", encoding="utf-8-sig") as original,
        written_whole(destination, newline="") as out,
    ):
        rows = csv.reader(original)
        header = next(rows)
        kept = [index for index, name in enumerate(header) if name != target]
        writer = csv.writer(out)
        writer.writerow([header[index] for index in kept])
        writer.writerows([row[index] if index < len(row) else "" for index in kept] for row in rows)
    return destination


# --- the commands' local side: run, then print what came out --------------------------------------------------


def show_check(settings: Settings) -> int:
    report = check_report(settings)
    print(report.text())
    # `check` is the whole process: spare its exit a garbage collection over azure-ai-ml's objects (over half a second).
    gc.freeze()
    return 1 if report.findings else 0


def failed(failure: StepFailed) -> int:
    reason = failure.last_line().removeprefix("error: ")
    print(f"error: step {failure.step!r} failed: {reason} (its log: {failure.log})", file=sys.stderr)
    return 1


def run_local(
    settings: Settings, overrides: dict[str, Any], reuse: bool, max_parallel: int | None = None, tune: bool = False
) -> int:
    """The training pipeline (with ``tune``, the tuning pipeline) on this machine; prints its tables. Tuning writes the
    selected model type and hyperparameters into config.yml."""
    from aml_pipeline_kit.local_runner import StepFailed

    try:
        result = run_pipeline_locally(settings, overrides, reuse, check=True, max_parallel=max_parallel, tune=tune)
    except StepFailed as failure:
        return failed(failure)
    show_training(result)
    if tune:
        write_tuned(settings, result.outputs["selection"])
    return 0


def show_training(result: RunResult) -> None:
    report = result.outputs["report"]
    print(f"\nrun {result.run_id} completed: {result.run_dir}")
    if "selection" in result.outputs:
        print(selection_table(json.loads((result.outputs["selection"] / "selection.json").read_text())))
    print(metrics_table(json.loads((report / "metrics.json").read_text())))
    decision = json.loads((result.outputs["decision"] / "decision.json").read_text())
    print(f"{'registered' if decision['registered'] else 'not registered'}: {decision['reason']}")
    print(f"model:  {result.outputs['model']}\nreport: {report}")


def selection_table(selection: dict[str, Any]) -> str:
    lines = [f"{'candidate':<24}{'valid. RMSE':>12}{'valid. R²':>11}  hyperparameters"]
    for name, scores in selection["candidates"].items():
        values = " ".join(f"{key}={value}" for key, value in scores["hyperparameters"].items())
        winner = "  <- selected" if name == selection["winner"] else ""
        lines.append(f"{name:<24}{scores['validation_rmse']:>12.3f}{scores['validation_r2']:>11.3f}  {values}{winner}")
    return "\n".join(lines) + "\n"


def metrics_table(metrics: dict[str, float]) -> str:
    lines = [f"{'metric':<8}{'model':>10}{'baseline':>10}"]
    lines += [f"{label:<8}{metrics[key]:>10.3f}{metrics['baseline_' + key]:>10.3f}" for label, key in METRIC_ROWS]
    return "\n".join(lines)


def job_file(settings: Settings, args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """``check --job`` / ``run --local --job``: a pipeline job YAML file, where the project's pipeline would be."""
    from aml_pipeline_kit.job_file import check_job_file, checked_job, run_job_file
    from aml_pipeline_kit.local_runner import StepFailed

    environment = read_yaml(settings.root / "aml" / "environment.yml").get("name")
    if args.command == "check":
        report = check_job_file(args.job, settings.data_substitutes, environment)
        print(report.text())
        return 1 if report.findings else 0
    if not args.local:
        raise UsageError("--job runs a pipeline job file locally (--local); `az ml job create --file` submits one")
    plan, report = checked_job(args.job, settings.data_substitutes, environment, overrides)
    if report.findings:
        raise CheckFailed(report)
    print(report.summary())
    parallel = {"parallel": args.max_parallel} if args.max_parallel else {}
    try:
        result = run_job_file(
            plan, settings.local_runs_dir, tracking_target(settings), reuse=not args.no_reuse, **parallel
        )
    except StepFailed as failure:
        return failed(failure)
    print(f"\nrun {result.run_id} completed: {result.run_dir}")
    print("".join(f"{name}: {path}\n" for name, path in result.outputs.items()), end="")
    return 0


def score_local(settings: Settings, model: str | None, data: str | None) -> int:
    from aml_pipeline_kit.local_runner import StepFailed

    model_dir, rows = local_model_and_rows(settings, model, data, lambda: rows_without_target(settings))
    try:
        result = score_locally(settings, model_dir, rows, check=True)
    except StepFailed as failure:
        return failed(failure)
    predictions = result.outputs["predictions"] / "predictions.csv"
    with predictions.open(encoding="utf-8") as handle:
        shown = list(itertools.islice(handle, SHOWN_PREDICTIONS + 1))  # the header and the first rows
        count = len(shown) - 1 + sum(1 for _ in handle)
    print(f"\nrun {result.run_id} completed: {result.run_dir}\nscored {count} rows of {rows}")
    print(f"with model {model_dir}\npredictions: {predictions}\n{''.join(shown)}", end="")
    return 0


def monitor_local(settings: Settings, model: str | None, data: str | None) -> int:
    """Monitoring on this machine; prints the monitor step's table, and fails (1) past a threshold."""
    from aml_pipeline_kit.local_runner import StepFailed

    model_dir, batch = local_model_and_rows(settings, model, data, lambda: settings.local_data_path)
    try:
        result = monitor_locally(settings, model_dir, batch, check=True)
    except StepFailed as failure:
        if failure.step == "monitor":  # a crossed threshold: its table says where, the error line below what
            log = failure.log.read_text(encoding="utf-8", errors="replace").splitlines()
            print("\n".join(line for line in log if not line.startswith("error: ")))
        return failed(failure)
    print(f"\nrun {result.run_id} completed: {result.run_dir}\nmonitored {batch} with model {model_dir}")
    print((result.run_dir / "monitor" / "step.log").read_text(encoding="utf-8", errors="replace"), end="")
    print(f"report: {result.outputs['report']}")
    return 0
