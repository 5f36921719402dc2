"""The ``aml-pipeline-kit`` command.

Anywhere: ``check --job`` / ``run --local --job`` a pipeline job YAML file offline. In a project (see
``project.py``): ``check`` it, ``run --local`` its pipeline on this machine, ``submit`` it to Azure ML, then use
the model: ``score`` rows in batch (locally or on Azure ML), ``serve`` it locally over HTTP, ``deploy`` it online,
and watch it: ``monitor`` a new batch for drift and quality (locally, on Azure ML, or on a schedule there).
``tune`` sweeps the model's hyperparameters (locally or on Azure ML) and writes the best into config.yml.

Runs and submissions start only when ``check`` finds nothing. Only the commands' own
modules are imported, when they run: ``--help`` stays instant. Every error ends in one line
on stderr and a non-zero exit: 2 for what the user can correct, a value or a file, the disk
or the MLflow store (1 when a run or a step failed), 130/143 when SIGINT/SIGTERM stopped the
command, 70 for a bug, whose traceback goes to a log file that the line names.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import sysconfig
import tempfile
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import yaml

from . import __version__
from .azure_ml import deploy_online, run_azure, score_azure
from .azure_monitoring import monitor_azure
from .check import CheckFailed
from .config_files import SettingsError
from .local_runner import Interrupted, raising_swallowed_interruptions
from .local_runs import (
    FORESEEN_ERRORS,
    UsageError,
    foreseen_error_line,
    job_file,
    latest_local_model,
    latest_sample_requests,
    monitor_local,
    run_local,
    score_local,
    show_check,
)
from .plan import BINDING, file_name_problem
from .project import Project, model_name_problem
from .tuning import refuse_unwritable_model_section, tuning_settings

PROG = "aml-pipeline-kit"
# What the project's Makefile and CI ask, so that they name no path config.yml decides.
LOCAL_PATHS: dict[str, Callable[[Project], list[Any]]] = {
    "runs-dir": lambda project: [project.local_runs_dir],
    "tracking-uri": lambda project: [project.local_tracking_uri],
    "local-outputs": Project.local_outputs,
    "sample-request": lambda project: [latest_sample_requests(project).endpoint],
    "sample-request-mlflow": lambda project: [latest_sample_requests(project).mlflow],
}
SERVE_HOST, SERVE_PORT = "127.0.0.1", 5001
BUG_EXIT_CODE = 70  # EX_SOFTWARE: an error this program did not foresee


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line rather than after the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            allowed = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be a whole number {allowed}")
        return value

    return parse


def parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``; numbers, booleans and ``null`` are typed as in config.yml, anything else stays text. Refused: a
    value that azure-ai-ml would read as a binding, and a registered model's name Azure ML would refuse after
    training."""
    name, separator, value = text.partition("=")
    name = name.strip()
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    if BINDING in value:
        problem = f"{BINDING}...}}}} is a binding to an input or output for Azure ML, never text"
    elif name == "registered_model_name":
        problem = model_name_problem(value)
    else:
        problem = None
    if problem:
        raise argparse.ArgumentTypeError(f"{name}={value!r} is invalid: {problem}")
    typed = yaml.safe_load(value) if value.strip() else value
    return name, typed if typed is None or isinstance(typed, bool | int | float) else value


def data_file(text: str) -> str:
    """``--data``: rows (a file or folder) or a data reference, whose name ends the path Azure ML fills into the step's
    command."""
    if problem := file_name_problem(text):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: {problem}; rename the file")
    return text


def substitute(text: str) -> tuple[str, Path]:
    """``REFERENCE=PATH``: a data reference of a job file and the local copy that stands in for it."""
    reference, separator, path = text.rpartition("=")
    if not separator or not reference.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not REFERENCE=PATH")
    return reference.strip(), Path(path.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check specs, scripts, wiring and environment, offline: after every edit")
    run = commands.add_parser("run", help="run the pipeline")
    for command in (check, run):
        command.add_argument("--job", type=Path, help="a pipeline job YAML file instead of the project's pipeline")
        command.add_argument(
            "--data",
            dest="substitutes",
            type=substitute,
            action="append",
            default=[],
            metavar="REFERENCE=PATH",
            help="with --job: run the job's data reference (an asset name@latest, a URL) from a local copy "
            "(a project maps them in config.yml's local.data_substitutes)",
        )
    tune = commands.add_parser(
        "tune", help="sweep the model's hyperparameters by cross-validation, write the best to config.yml"
    )
    for command in (run, tune):
        where = command.add_mutually_exclusive_group(required=True)
        where.add_argument("--local", action="store_true", help="on this machine, tracked with MLflow in a local store")
        where.add_argument("--azure", action="store_true", help="on Azure ML (`run --azure` is `submit`)")
        command.add_argument(
            "--no-reuse", action="store_true", help="run every step, even if an earlier run can be reused"
        )
        command.add_argument(
            "--max-parallel",
            type=whole_number(1),
            metavar="N",
            help="run at most N steps at once (default: one per CPU core)",
        )
    run.add_argument(
        "--watch",
        action="store_true",
        help="with --local: run again each time a file the pipeline reads is saved, on a step host kept warm; "
        "Ctrl-C ends it",
    )
    submit = commands.add_parser("submit", help="submit the pipeline to Azure ML and stream it")
    score = add_model_command(
        commands,
        "score",
        "predict the target of every row of a CSV, a folder of files or an MLTable (batch scoring)",
        data="rows to score: a CSV, a folder of CSV and Parquet files or an MLTable folder (default, local only: the "
        "project's CSV without its target column); on Azure also a data asset, azureml:<name>:<version>",
    )
    monitor = add_model_command(
        commands,
        "monitor",
        "compare a new batch of rows with the training data: drift, quality",
        data="the new rows, with or without the target: a CSV, a folder of files or an MLTable folder (default, "
        "local: the project's CSV); on Azure also "
        "a datastore path or data asset (default: config.yml's monitoring.batch_path, where --schedule uploads a CSV)",
    )
    monitor.add_argument(
        "--schedule",
        action="store_true",
        help="Azure ML: create or update the schedule of aml/monitor-schedule.yml instead of running once",
    )
    for command in (submit, score, monitor, tune):
        command.add_argument("--no-stream", action="store_true", help="Azure ML: return once the job is submitted")
    for command in (submit, score, tune):
        command.add_argument(
            "--dry-run", action="store_true", help="print what would be created or updated and the job, contact nothing"
        )
    serve = commands.add_parser("serve", help="serve a local model over HTTP with MLflow's scoring server")
    serve.add_argument("--model", type=Path, help="model folder (default: the latest completed local run's)")
    serve.add_argument(
        "--port", type=whole_number(1, 65535), default=SERVE_PORT, help="port on 127.0.0.1 (default: %(default)s)"
    )
    commands.add_parser("deploy", help="deploy the newest registered model to the Azure ML online endpoint in aml/")
    show = commands.add_parser("show", help="print where local runs keep what they make, one absolute path a line")
    show.add_argument(
        "what",
        choices=LOCAL_PATHS,
        help="runs-dir: the folder of local runs; tracking-uri: their MLflow store; local-outputs: all they leave; "
        "sample-request, sample-request-mlflow: rows for the latest local model in an online endpoint's body, in "
        "MLflow's for serve",
    )
    for command in (run, submit, tune):
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


def add_model_command(commands: Any, name: str, description: str, data: str) -> argparse.ArgumentParser:
    """A command that uses a model on rows: --local or --azure, --model, and --data (``data`` says what it is)."""
    command = commands.add_parser(name, help=description)
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="on this machine, with a local model")
    where.add_argument("--azure", action="store_true", help="on Azure ML, with a registered model")
    command.add_argument(
        "--model",
        help="local: a model folder (default: the latest completed local run's); "
        "Azure: azureml:<name>@latest or azureml:<name>:<version> (default: the newest registered version)",
    )
    command.add_argument("--data", type=data_file, help=data)
    return command


def serve_command(model: Path, port: int = SERVE_PORT) -> list[str]:
    """MLflow's own scoring server for ``model``, in this environment (none is built), on the loopback interface."""
    options = ["--env-manager", "local", "-p", str(port), "-h", SERVE_HOST]
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model), *options]


def serve_environment() -> dict[str, str]:
    """MLflow starts its server as the ``uvicorn`` found on PATH: this environment's scripts folder comes first."""
    path = [sysconfig.get_path("scripts"), os.environ.get("PATH")]
    return {**os.environ, "PATH": os.pathsep.join(filter(None, path))}


def serve(project: Project, model: Path | None, port: int) -> NoReturn:
    model = model or latest_local_model(project)
    argv = serve_command(model, port)
    print(f"serving {model} at http://{SERVE_HOST}:{port}/invocations (Ctrl-C stops it)", flush=True)
    os.execvpe(argv[0], argv, serve_environment())  # the server takes this process over, Ctrl-C included


def dispatch(args: argparse.Namespace) -> int:
    overrides = dict(getattr(args, "param", []))
    if getattr(args, "job", None):
        if getattr(args, "watch", False):
            raise UsageError("--watch watches a project's files: run it in a project, without --job")
        return job_file(args, overrides)
    if getattr(args, "substitutes", None):
        raise UsageError("--data REFERENCE=PATH is for --job; a project maps data in local.data_substitutes")
    project = Project.load()
    if args.command == "check":
        return show_check(project)
    if args.command == "tune":
        tuning_settings(project)  # a value tuning cannot use, in one line rather than in check's report
        refuse_unwritable_model_section(project)  # where the sweep's result goes: said before it runs, not after
    if getattr(args, "watch", False):
        if not args.local:
            raise UsageError("--watch runs the pipeline on this machine: use it with --local")
        from .watch import watch_local

        return watch_local(project.root, overrides, reuse=not args.no_reuse, max_parallel=args.max_parallel)
    if args.command in {"run", "tune"} and args.local:
        tune = args.command == "tune"
        return run_local(project, overrides, reuse=not args.no_reuse, max_parallel=args.max_parallel, tune=tune)
    if args.command == "score" and args.local:
        return score_local(project, args.model, args.data)
    if args.command == "score":
        return score_azure(project, args.model, args.data, stream=not args.no_stream, dry_run=args.dry_run)
    if args.command == "monitor" and args.schedule and args.local:
        raise UsageError("--schedule is for --azure: locally, run `monitor --local` from cron or CI instead")
    if args.command == "monitor":
        if args.local:
            return monitor_local(project, args.model, args.data)
        return monitor_azure(project, args.model, args.data, stream=not args.no_stream, schedule=args.schedule)
    if args.command == "serve":
        return serve(project, args.model, args.port)
    if args.command == "deploy":
        return deploy_online(project)
    if args.command == "show":
        print("\n".join(str(value) for value in LOCAL_PATHS[args.what](project)))
        return 0
    stream, dry_run = not getattr(args, "no_stream", False), getattr(args, "dry_run", False)
    return run_azure(project, overrides, stream=stream, dry_run=dry_run, tune=args.command == "tune")


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT or SIGTERM: stop what runs, once; a second signal must not cut the clean-up short."""
    for stopping in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stopping, signal.SIG_IGN)
    raise Interrupted(signum)


def error_logs() -> list[Path]:
    """Where unforeseen errors' tracebacks go: errors/ in a project's local runs' folder, if there is a project."""
    try:
        return [Project.load().local_runs_dir / "errors"]
    except SettingsError:
        return []


def log_unforeseen(error: BaseException) -> Path:
    """The traceback of an error no handler foresaw, in a file of its own under runs/errors/ (or the temp folder)."""
    name = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(error))
    for folder in (*error_logs(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
            return folder / name
        except OSError:
            continue
    return Path(os.devnull)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = {stopping: signal.signal(stopping, interrupt) for stopping in (signal.SIGINT, signal.SIGTERM)}
    try:
        with raising_swallowed_interruptions():
            return dispatch(args)
    except Interrupted as interruption:
        done = f": {interruption.summary}" if interruption.summary else ""
        print(f"interrupted by {signal.Signals(interruption.signum).name}{done}", file=sys.stderr)
        return 128 + interruption.signum
    except CheckFailed as failure:
        print(f"{failure.report.text()}\nnot started: fix the findings above, `make check` re-checks", file=sys.stderr)
        return 1
    # OSError: the disk full, a file where a folder goes, a read-only folder: the file system said no.
    except (*FORESEEN_ERRORS, OSError) as error:
        print(foreseen_error_line(error), file=sys.stderr)
        return 2
    except Exception as error:  # a bug, or an error from a library nobody foresaw: one line, the rest in a file
        log = log_unforeseen(error)
        message = " ".join(str(error).split()) or "no message"
        print(f"error: unexpected {type(error).__name__}: {message[:300]} (traceback: {log})", file=sys.stderr)
        return BUG_EXIT_CODE
    finally:
        for stopping, handler in previous.items():
            signal.signal(stopping, handler)


if __name__ == "__main__":
    sys.exit(main())
