"""Command line: ``check`` the project, ``run --local`` on this machine, ``submit`` to Azure ML.

Runs and submissions start only when ``check`` finds nothing. Only the commands' own
modules are imported, when they run: ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from typing import TYPE_CHECKING, Any

import yaml

from .check import CheckFailed, check_project
from .local_runner import StepHostError
from .plan import PlanError
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .local_runner import RunResult, StepHost, TrackingTarget

METRIC_ROWS = (("RMSE", "rmse"), ("MAE", "mae"), ("R²", "r2"))


def parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``; numbers, booleans and ``null`` are typed as in config.yml, anything else stays text."""
    name, separator, value = text.partition("=")
    if not separator or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    typed = yaml.safe_load(value) if value.strip() else value
    return name.strip(), typed if typed is None or isinstance(typed, bool | int | float) else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diabetes_blood_pressure", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="check specs, scripts, wiring and environment, offline: after every edit")
    run = commands.add_parser("run", help="run the pipeline")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="on this machine, tracked with MLflow in a local store")
    where.add_argument("--azure", action="store_true", help="on Azure ML (the same as `submit`)")
    run.add_argument("--no-reuse", action="store_true", help="run every step, even if an earlier run can be reused")
    submit = commands.add_parser("submit", help="submit the pipeline to Azure ML and stream it")
    submit.add_argument("--no-stream", action="store_true", help="return once the job is submitted")
    for command in (run, submit):
        command.add_argument(
            "-p",
            "--param",
            type=parameter,
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="set a pipeline parameter for this run, e.g. -p model_type=random_forest",
        )
    return parser


def selection_table(selection: dict[str, Any]) -> str:
    lines = [f"{'candidate':<24}{'valid. RMSE':>12}{'valid. R²':>11}"]
    for name, scores in selection["candidates"].items():
        winner = "  <- selected" if name == selection["winner"] else ""
        lines.append(f"{name:<24}{scores['validation_rmse']:>12.3f}{scores['validation_r2']:>11.3f}{winner}")
    return "\n".join(lines) + "\n"


def metrics_table(metrics: dict[str, float]) -> str:
    lines = [f"{'metric':<8}{'model':>10}{'baseline':>10}"]
    lines += [f"{label:<8}{metrics[key]:>10.3f}{metrics['baseline_' + key]:>10.3f}" for label, key in METRIC_ROWS]
    return "\n".join(lines)


def show_check(settings: Settings) -> int:
    report = check_project(settings)
    print(report.text())
    # `check` is the whole process: spare its exit a garbage collection over azure-ai-ml's objects (over half a second).
    gc.freeze()
    return 1 if report.findings else 0


def passed_check(settings: Settings) -> None:
    """``check`` before a run or a submission: print its summary, or raise ``CheckFailed``."""
    report = check_project(settings)
    if report.findings:
        raise CheckFailed(report)
    print(report.summary())


def tracking_target(settings: Settings) -> TrackingTarget:
    from .local_runner import TrackingTarget

    return TrackingTarget(
        settings.local_tracking_uri, settings.setting("azure", "experiment_name"), settings.root / "mlartifacts"
    )


def start_step_host(settings: Settings) -> StepHost:
    """A warm step host for this project's components: it serves any number of runs until closed."""
    from .local_runner import StepHost

    components = sorted(path for path in (settings.root / "components").iterdir() if path.is_dir())
    return StepHost(tracking_target(settings), components)


def run_pipeline_locally(
    settings: Settings,
    overrides: dict[str, Any],
    reuse: bool = True,
    check: bool = False,
    host: StepHost | None = None,
) -> RunResult:
    """Build the pipeline job and run its steps on this machine; raises ``StepFailed`` on a failed step.

    With ``check``, the project is checked first and ``CheckFailed`` raised on a finding. Without a
    ``host``, one is started for this run, and warms up while this process builds the graph.
    """
    from .local_runner import LocalRunner

    settings.pipeline_inputs_with(overrides)  # a mistyped parameter fails before anything starts
    own_host = host is None
    host = host or start_step_host(settings)
    try:
        if check:  # while the host warms up; the check's azure-ai-ml import serves the build below too
            passed_check(settings)
        from .aml_graph import plan_from_job
        from .pipeline import local_pipeline

        plan = plan_from_job(local_pipeline(settings, overrides))
        runs_dir = settings.root / settings.setting("local", "runs_dir")
        return LocalRunner(runs_dir, host, tracking_target(settings), reuse=reuse).run(plan)
    finally:
        if own_host:
            host.close()


def run_local(settings: Settings, overrides: dict[str, Any], reuse: bool) -> int:
    from .local_runner import StepFailed

    try:
        result = run_pipeline_locally(settings, overrides, reuse, check=True)
    except StepFailed as failure:
        print(f"\nFAILED: {failure}\n--- last lines of {failure.log} ---\n{failure.log_tail()}", file=sys.stderr)
        return 1
    report = result.outputs["report"]
    print(f"\nrun {result.run_id} completed: {result.run_dir}")
    if "selection" in result.outputs:
        print(selection_table(json.loads((result.outputs["selection"] / "selection.json").read_text())))
    print(metrics_table(json.loads((report / "metrics.json").read_text())))
    decision = json.loads((result.outputs["decision"] / "decision.json").read_text())
    print(f"{'registered' if decision['registered'] else 'not registered'}: {decision['reason']}")
    print(f"model:  {result.outputs['model']}\nreport: {report}")
    return 0


def run_azure(settings: Settings, overrides: dict[str, Any], stream: bool) -> int:
    from .azure_ml import ml_client, submit

    passed_check(settings)
    submit(settings, ml_client(settings), overrides, stream=stream)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = dict(getattr(args, "param", []))
    try:
        settings = Settings.load()
        if args.command == "check":
            return show_check(settings)
        if args.command == "run" and args.local:
            return run_local(settings, overrides, reuse=not args.no_reuse)
        return run_azure(settings, overrides, stream=not getattr(args, "no_stream", False))
    except CheckFailed as failure:
        print(f"{failure.report.text()}\nnot started: fix the findings above, `make check` re-checks", file=sys.stderr)
        return 1
    except (SettingsError, PlanError, StepHostError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
