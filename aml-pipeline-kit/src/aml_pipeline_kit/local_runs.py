"""Runs on this machine: a project's pipelines (training, tuning, scoring and monitoring) through the local runner,
after ``check``, and pipeline job files; what they leave behind (the latest model, the rows to score); and the local
side of the commands (``check``, ``run --local``, ``tune --local``, ``score --local``, ``monitor --local``,
``run --local --job``): what they print, and their exit code."""

from __future__ import annotations

import csv
import gc
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .azure_credentials import AzureAccessError
from .check import CheckFailed, Definitions, Finding, Report, check_project
from .check.report import key_pattern, line_of
from .config_files import SettingsError, read_yaml
from .data_refs import reference_key
from .local_runner import LocalRunner, hosting, raising_swallowed_interruptions
from .plan import PlanError, Step, plan_from_data
from .plan_cache import VERDICT, PlanCache, model_plan, training_plan
from .project import (
    LOCAL_ARTIFACTS_DIR,
    Project,
    find_project_root,
    model_input,
    model_name_problem,
    rows,
    rows_type,
    tracking_uri_from,
)
from .records import read_record, written_whole
from .sample_requests import SampleRequests, after_run, sample_requests
from .snapshot import code_folders
from .step_host import StepHostError
from .tuning import tuning_findings, write_tuned

if TYPE_CHECKING:
    import argparse

    from azure.ai.ml.entities import PipelineJob

    from .local_runner import RunResult, StepFailed
    from .step_host import StepHost, TrackingTarget

METRIC_ROWS = (("RMSE", "rmse"), ("MAE", "mae"), ("R²", "r2"))
SHOWN_PREDICTIONS = 5
SCORE_INPUT_DIR = "score-input"  # under runs/: the project's CSV without its target, the default rows to score


class UsageError(ValueError):
    """A command cannot do what was asked; the message says what to do instead."""


# What a command says in one line, without a traceback: a setting, the plan, the step host, the command's use, Azure.
FORESEEN_ERRORS = (SettingsError, PlanError, StepHostError, UsageError, AzureAccessError)


def check_report(project: Project, cache: PlanCache | None = None) -> Report:
    """``check`` on the project: every pipeline it registers, built as the local runner builds it, the monitoring
    schedule's spec, config.yml's tuning settings, and the name the model is registered under."""

    def project_findings() -> list[Finding]:
        from .azure_monitoring import schedule_findings

        return [*schedule_findings(project), *tuning_findings(project), *model_name_findings(project)]

    build = lambda: checked_graphs(project)  # noqa: E731 (azure-ai-ml: seconds to import, paid only when a check runs)
    cache = cache or plan_cache(project)
    return check_project(project.root, build, project.pipelines_file, cache, project_findings)


def model_name_findings(project: Project) -> list[Finding]:
    """config.yml's azure.registered_model_name by Azure ML's rule: the register step would fail on it after training
    (a local run's registry takes more)."""
    name = project.setting("azure", "registered_model_name")
    problem = model_name_problem(name)
    if problem is None:
        return []
    config = project.config_file
    message, hint = f"azure.registered_model_name: {name!r} is invalid: {problem}", "rename the model"
    return [Finding(config, "model-name", message, hint, line_of(config, key_pattern("registered_model_name")))]


def checked_graphs(project: Project) -> dict[str, PipelineJob]:
    """Every pipeline the project registers, built on this machine's data: no model is needed to check the wiring, so
    any folder that exists stands in for one. Not the tuning pipeline while config.yml's tuning settings are ones
    tuning cannot use: check names them (``tuning_findings``)."""
    roles = [role for role in project.pipelines if role != "tuning" or not tuning_findings(project)]
    return {role: local_job(project, role, model=project.root / "components") for role in roles}


def local_job(
    project: Project,
    role: str,
    overrides: dict[str, Any] | None = None,
    model: Path | None = None,
    data: Path | None = None,
) -> PipelineJob:
    """The project's pipeline of ``role`` on this machine: training and tuning with ``overrides`` on the project's
    CSV; scoring ``data`` with the model folder ``model``; monitoring ``data`` (a new batch, by default the project's
    CSV) with ``model`` against the project's CSV. azure-ai-ml: seconds to import, paid by the first build."""
    csv = rows(project.local_data_path)
    if role in {"training", "tuning"}:
        return project.training_job(csv, overrides, tune=role == "tuning")
    if model is None:
        raise UsageError(f"the {role} pipeline needs a model folder")
    batch = rows(data) if data else csv
    training_data = (csv,) if role == "monitoring" else ()
    return project.pipeline(role)(project, model_input(model, project), *training_data, batch)


def plan_cache(project: Project) -> PlanCache:
    """The plans and check's verdict kept under runs/ for as long as what they were built from is unchanged."""
    return PlanCache(project.root, project.local_runs_dir / ".plans", [project.pipelines_file.parent])


def passed_check(project: Project, cache: PlanCache | None = None) -> None:
    """``check`` before a run or a submission: print its summary, or raise ``CheckFailed``."""
    report = check_report(project, cache)
    if report.findings:
        raise CheckFailed(report)
    print(report.summary())


def tracking_target(project: Project) -> TrackingTarget:
    from .step_host import TrackingTarget

    return TrackingTarget(
        project.local_tracking_uri, project.setting("azure", "experiment_name"), project.local_artifacts_dir
    )


def start_step_host(project: Project, steps: Iterable[Step] | None = None, keep_warm: bool = False) -> StepHost:
    """A warm step host for this project's components: it serves any number of runs until closed. It loads what
    ``steps`` import (by default every component's); with ``keep_warm``, all of that whichever steps a run runs."""
    from .step_host import StepHost

    components = sorted(path for path in (project.root / "components").iterdir() if path.is_dir())
    return StepHost(tracking_target(project), components if steps is None else code_folders(steps), keep_warm)


def run_locally(
    project: Project,
    kind: dict[str, Any],
    build: Callable[[], PipelineJob],
    reuse: bool = True,
    check: bool = False,
    host: StepHost | None = None,
    max_parallel: int | None = None,
) -> RunResult:
    """Build a pipeline job with ``build()`` (unless the plan cache holds its ``kind``) and run its steps on this
    machine; raises ``StepFailed`` on a failed step.

    With ``check``, the project is checked first and ``CheckFailed`` raised on a finding. Without a ``host``, one is
    started for this run if it has steps to run: at once if azure-ai-ml must build the graph or check it (the host
    warms up meanwhile), otherwise once the plan cache's plan tells which steps will run, for those. A run that
    reuses every step starts none.
    """
    cache = plan_cache(project)
    parallel = {"parallel": max_parallel} if max_parallel else {}
    with hosting(LocalRunner(project.local_runs_dir, host, tracking_target(project), reuse, **parallel)) as runner:
        # A plan kept, and check's verdict when it must pass: what will run is known before anything starts.
        known = not check or cache.lookup(VERDICT, Definitions.from_data) is not None
        plan = cache.lookup(kind, plan_from_data) if known else None
        to_run = runner.steps_to_run(plan) if plan else None
        if runner.host is None and (plan is None or to_run):  # it warms up while check and the build run
            runner.host = start_step_host(project, to_run)
        with raising_swallowed_interruptions():
            if check:
                passed_check(project, cache)
            plan = plan or cache.plan(kind, build)
        return runner.run(plan)


def run_pipeline_locally(
    project: Project,
    overrides: dict[str, Any],
    reuse: bool = True,
    check: bool = False,
    host: StepHost | None = None,
    max_parallel: int | None = None,
    tune: bool = False,
) -> RunResult:
    """The training pipeline on this machine, with config.yml's parameters unless ``overrides`` sets them; with
    ``tune``, the tuning pipeline (its sweeps' trials side by side, up to ``max_parallel``). The sample requests
    follow the model it leaves."""

    def build() -> PipelineJob:  # azure-ai-ml: seconds to import, while the step host warms up
        return local_job(project, "tuning" if tune else "training", overrides)

    kind = {**training_plan(overrides), "kind": "tuning"} if tune else training_plan(overrides)
    result = run_locally(project, kind, build, reuse, check, host, max_parallel)
    after_run(project, result.outputs["model"])
    return result


def score_locally(
    project: Project, model: Path, data: Path, check: bool = False, host: StepHost | None = None
) -> RunResult:
    """The scoring pipeline on this machine: ``model`` predicts every row of ``data``."""
    return run_with_model(project, "scoring", model, data, check, host)


def monitor_locally(
    project: Project, model: Path, batch: Path, check: bool = False, host: StepHost | None = None
) -> RunResult:
    """The monitoring pipeline on this machine: ``batch`` and ``model``'s predictions on it vs. the training data."""
    return run_with_model(project, "monitoring", model, batch, check, host)


def run_with_model(
    project: Project,
    kind: Literal["scoring", "monitoring"],
    model: Path,
    data: Path,
    check: bool,
    host: StepHost | None,
) -> RunResult:
    """A pipeline of the project that puts ``model`` to work on ``rows``, on this machine (monitoring: against the
    project's CSV)."""

    def build() -> PipelineJob:  # azure-ai-ml: seconds to import, while the step host warms up
        return local_job(project, kind, model=model, data=data)

    # The graph declares the rows' type: a file and a folder at the same path make different plans.
    plan_kind = {**model_plan(kind, model, data), "data_type": rows_type(data)}
    return run_locally(project, plan_kind, build, check=check, host=host)


def local_model_and_rows(
    project: Project, model: str | None, data: str | None, default_rows: Callable[[], Path]
) -> tuple[Path, Path]:
    """``--model`` (default: the latest local run's) and ``--data`` (default: ``default_rows()``), checked to exist."""
    model_dir = Path(model) if model else latest_local_model(project)
    rows_path = Path(data) if data else default_rows()
    if not (model_dir / "MLmodel").is_file():
        raise UsageError(f"--model {model_dir}: not an MLflow model folder (it has no MLmodel file)")
    if not rows_path.exists():
        raise UsageError(f"--data {rows_path}: no such file or folder (a CSV, a folder of files or an MLTable folder)")
    return model_dir, rows_path


def latest_local_model(project: Project) -> Path:
    """The model of the newest completed local run (run ids are their start time, so they sort by it)."""
    for summary in sorted(project.local_runs_dir.glob("*/run.json"), reverse=True):
        model = read_record(summary, "run summary", completed_model)
        if model and Path(model).is_dir():
            return Path(model)
    raise UsageError(f"no completed local run with a model in {project.local_runs_dir}: `make run` trains one")


def latest_sample_requests(project: Project) -> SampleRequests:
    """The sample requests for the latest local model, written now if they are missing or out of date."""
    return sample_requests(project, latest_local_model(project))


def completed_model(run: dict[str, Any]) -> str | None:
    """The model folder a run summary names, if the run completed."""
    model = run["outputs"].get("model")
    return model if run["status"] == "completed" and isinstance(model, str) else None


def rows_without_target(project: Project) -> Path:
    """The project's CSV without its target column, written under runs/: the rows a model is asked to score.

    Copied field by field, so every value reaches the model exactly as the CSV has it.
    """
    source, target = project.local_data_path, project.setting("target_column")
    if not source.is_file():
        raise UsageError(f"the project's CSV {source} is gone (aml/data.yml names it): restore it, or pass --data")
    destination = project.local_runs_dir / SCORE_INPUT_DIR / source.name
    destination.parent.mkdir(parents=True, exist_ok=True)
    with (  # whole or not at all: a concurrent `score` never reads half a file
        source.open(newline="", encoding="utf-8-sig") as original,
        written_whole(destination, newline="") as out,
    ):
        records = csv.reader(original)
        header = next(records)
        kept = [index for index, name in enumerate(header) if name != target]
        writer = csv.writer(out)
        writer.writerow([header[index] for index in kept])
        writer.writerows([row[index] if index < len(row) else "" for index in kept] for row in records)
    return destination


# --- the commands' local side: run, then print what came out --------------------------------------------------


def show_check(project: Project) -> int:
    report = check_report(project)
    print(report.text())
    # `check` is the whole process: spare its exit a garbage collection over azure-ai-ml's objects (over half a second).
    gc.freeze()
    return 1 if report.findings else 0


def foreseen_error_line(error: Exception) -> str:
    """One of ``FORESEEN_ERRORS``, or what the file system refused, in the one line a command prints for it."""
    return f"error: {file_system_error(error) if isinstance(error, OSError) else error}"


def file_system_error(error: OSError) -> str:
    """What the file system refused, in one line: the file or files, and why."""
    if error.strerror and error.filename:
        files = " -> ".join(str(name) for name in (error.filename, error.filename2) if name)
        return f"{files}: {error.strerror}"
    return " ".join(str(error).split())[:300] or type(error).__name__


def failed(failure: StepFailed) -> int:
    reason = failure.last_line().removeprefix("error: ")
    print(f"error: step {failure.step!r} failed: {reason} (its log: {failure.log})", file=sys.stderr)
    return 1


def run_local(
    project: Project, overrides: dict[str, Any], reuse: bool, max_parallel: int | None = None, tune: bool = False
) -> int:
    """The training pipeline (with ``tune``, the tuning pipeline) on this machine; prints its tables. Tuning writes the
    selected model type and hyperparameters into config.yml."""
    from .local_runner import StepFailed

    try:
        result = run_pipeline_locally(project, overrides, reuse, check=True, max_parallel=max_parallel, tune=tune)
    except StepFailed as failure:
        return failed(failure)
    show_training(project, result)
    if tune:
        write_tuned(project, result.outputs["selection"])
    return 0


def show_training(project: Project, result: RunResult) -> None:
    report = result.outputs["report"]
    print(f"\nrun {result.run_id} completed: {result.run_dir}")
    if "selection" in result.outputs:
        print(selection_table(json.loads((result.outputs["selection"] / "selection.json").read_text())))
    print(metrics_table(json.loads((report / "metrics.json").read_text())))
    decision = json.loads((result.outputs["decision"] / "decision.json").read_text())
    print(f"{'registered' if decision['registered'] else 'not registered'}: {decision['reason']}")
    print(f"model:  {result.outputs['model']}\nreport: {report}")
    requests = SampleRequests.of(project.local_runs_dir)
    if requests.written_from():
        print(f"sample requests: {requests.endpoint} (online endpoint), {requests.mlflow} (serve)")


def selection_table(selection: dict[str, Any]) -> str:
    """Each candidate's cross-validation RMSE, the folds' mean ± their standard deviation, and mean R²."""
    lines = [f"{'candidate':<24}{'CV RMSE (mean ± sd)':>22}{'CV R²':>8}  hyperparameters"]
    for name, scores in selection["candidates"].items():
        values = " ".join(f"{key}={value}" for key, value in scores["hyperparameters"].items())
        winner = "  <- selected" if name == selection["winner"] else ""
        rmse = f"{scores['cv_rmse']:.3f} ± {scores['cv_rmse_std']:.3f}"
        lines.append(f"{name:<24}{rmse:>22}{scores['cv_r2']:>8.3f}  {values}{winner}")
    return "\n".join(lines) + "\n"


def metrics_table(metrics: dict[str, float]) -> str:
    lines = [f"{'metric':<8}{'model':>10}{'baseline':>10}"]
    lines += [f"{label:<8}{metrics[key]:>10.3f}{metrics['baseline_' + key]:>10.3f}" for label, key in METRIC_ROWS]
    return "\n".join(lines)


@dataclass(frozen=True)
class JobFileContext:
    """Where ``--job`` runs a pipeline job file: in a project, its runs folder, MLflow store, data substitutes and
    environment; anywhere else, ``runs/`` and ``mlruns.db`` in the current folder (``MLFLOW_TRACKING_URI`` if set)."""

    runs_dir: Path
    tracking_uri: str
    artifacts_dir: Path
    substitutes: dict[str, Path]
    environment: str | None = None
    experiment: str | None = None

    @classmethod
    def here(cls, substitutes: list[tuple[str, Path]]) -> JobFileContext:
        given = {reference_key(reference): path.resolve() for reference, path in substitutes}
        root = find_project_root(Path.cwd(), os.environ)
        if root is None:
            cwd = Path.cwd()
            uri = os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri_from({}, cwd)
            return cls(cwd / "runs", uri, cwd / LOCAL_ARTIFACTS_DIR, given)
        project = Project.load(root)
        environment = read_yaml(project.root / "aml" / "environment.yml").get("name")
        return cls(
            project.local_runs_dir,
            project.local_tracking_uri,
            project.local_artifacts_dir,
            {**project.data_substitutes, **given},
            environment,
            project.setting("azure", "experiment_name"),
        )


def job_file(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """``check --job`` / ``run --local --job``: a pipeline job YAML file, in a project or anywhere."""
    from .job_file import check_job_file, checked_job, run_job_file
    from .local_runner import StepFailed
    from .step_host import TrackingTarget

    context = JobFileContext.here(args.substitutes)
    if args.command == "check":
        report = check_job_file(args.job, context.substitutes, context.environment)
        print(report.text())
        return 1 if report.findings else 0
    if not args.local:
        raise UsageError("--job runs a pipeline job file locally (--local); `az ml job create --file` submits one")
    with raising_swallowed_interruptions():
        plan, report = checked_job(args.job, context.substitutes, context.environment, overrides)
    if report.findings:
        raise CheckFailed(report)
    print(report.summary())
    # Azure ML files a job that names no experiment under "Default" (MachineLearningJobProperties.ExperimentName).
    experiment = context.experiment or plan.experiment or "Default"
    tracking = TrackingTarget(context.tracking_uri, experiment, context.artifacts_dir)
    parallel = {"parallel": args.max_parallel} if args.max_parallel else {}
    try:
        result = run_job_file(plan, context.runs_dir, tracking, reuse=not args.no_reuse, **parallel)
    except StepFailed as failure:
        return failed(failure)
    print(f"\nrun {result.run_id} completed: {result.run_dir}")
    print("".join(f"{name}: {path}\n" for name, path in result.outputs.items()), end="")
    return 0


def score_local(project: Project, model: str | None, data: str | None) -> int:
    from .local_runner import StepFailed

    model_dir, rows_path = local_model_and_rows(project, model, data, lambda: rows_without_target(project))
    try:
        result = score_locally(project, model_dir, rows_path, check=True)
    except StepFailed as failure:
        return failed(failure)
    predictions = result.outputs["predictions"]
    count, shown = predicted_rows(sorted(predictions.glob("*.csv")))
    print(f"\nrun {result.run_id} completed: {result.run_dir}\nscored {count} rows of {rows_path}")
    print(f"with model {model_dir}\npredictions: {predictions} (a CSV per mini-batch)\n{''.join(shown)}", end="")
    return 0


def predicted_rows(files: list[Path]) -> tuple[int, list[str]]:
    """How many rows the predictions CSVs hold (a header each), and the first's header with the first rows of them
    all, in order of the files' names. Read a line at a time: a million rows need no more memory than five."""
    count, shown = 0, []
    for file in files:
        with file.open(encoding="utf-8") as handle:
            header = next(handle, None)
            shown = shown or ([header] if header else [])
            first = list(itertools.islice(handle, SHOWN_PREDICTIONS + 1 - len(shown)))
            shown += first
            count += len(first) + sum(1 for _ in handle)
    return count, shown


def monitor_local(project: Project, model: str | None, data: str | None) -> int:
    """Monitoring on this machine; prints the monitor step's table, and fails (1) past a threshold."""
    from .local_runner import StepFailed

    model_dir, batch = local_model_and_rows(project, model, data, lambda: project.local_data_path)
    try:
        result = monitor_locally(project, model_dir, batch, check=True)
    except StepFailed as failure:
        if failure.step == "monitor":  # a crossed threshold: its table says where, the error line below what
            log = failure.log.read_text(encoding="utf-8", errors="replace").splitlines()
            print("\n".join(line for line in log if not line.startswith("error: ")))
        return failed(failure)
    print(f"\nrun {result.run_id} completed: {result.run_dir}\nmonitored {batch} with model {model_dir}")
    print((result.run_dir / "monitor" / "step.log").read_text(encoding="utf-8", errors="replace"), end="")
    print(f"report: {result.outputs['report']}")
    return 0
