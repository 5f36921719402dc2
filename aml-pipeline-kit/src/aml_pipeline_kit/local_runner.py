"""Run a pipeline ``Plan`` on this machine, step by step, as Azure ML would.

Each step's own command line is filled in with local paths and values and run in
the step's code folder with this project's Python. Outputs go to
``runs/<run id>/<step>/<output>/``, a log per step beside them. A deterministic
step whose code, command, parameters and inputs hash the same as an earlier
successful step is reused instead of run; so is a step that decides from a model
registry (``plan.REGISTRY_TAG``) while the registry holds what it held when that
step ended. A run that reuses every step starts no step host and writes no MLflow
run. Imports no azure-ai-ml.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from .plan import PLAIN_WORD, Plan, PlanError, Step, file_name, unquoted_inputs
from .records import write_record
from .registry import registry_state, registry_uri
from .reuse import ReuseIndex, content_digest, link_tree, step_key
from .snapshot import Snapshot, code_folders, missing_include, snapshot_files
from .step_host import StepHost, StepHostError, TrackingTarget
from .step_io import (
    ReadOnly,
    downloaded,
    fresh_code_copy,
    output_path,
    read_only_inputs,
    render_command,
    resolve_inputs,
    written_input,
)

# Names other modules and the tests import from here, where they lived before reuse.py and step_io.py.
__all__ = [
    "Interrupted",
    "LocalRunner",
    "ReuseIndex",
    "RunResult",
    "StepFailed",
    "StepHost",
    "StepResult",
    "content_digest",
    "plan_problem",
    "render_command",
    "resolve_inputs",
    "step_key",
]


FULL_DISK_BYTES = 1 << 20  # less free space than this: a step's log had no room


class StepFailed(RuntimeError):
    def __init__(self, step: str, returncode: int, log: Path) -> None:
        self.step, self.returncode, self.log = step, returncode, log
        super().__init__(f"step {step!r} failed with exit code {returncode}; its log: {log}")

    def last_line(self) -> str:
        """The step's own last word: its one-line error, or the exception line ending a traceback; without one, its
        exit code (and a full disk, which leaves a step no room to say more)."""
        with contextlib.suppress(OSError):
            lines = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
            if lines:
                return lines[-1]
        with contextlib.suppress(OSError):
            if shutil.disk_usage(self.log.parent).free < FULL_DISK_BYTES:
                return f"exit code {self.returncode}, nothing in its log: the disk that holds it is full"
        return f"exit code {self.returncode}, nothing in its log"


class Interrupted(BaseException):  # a BaseException, as KeyboardInterrupt: no `except Exception` swallows it
    """SIGINT or SIGTERM, raised into a run by the caller's signal handler: the run stops, marked killed."""

    raised: ClassVar[list[int]] = []  # every signal raised as one in this process, swallowed or not

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.summary = ""  # what the runner did about it, for the one line the caller prints
        Interrupted.raised.append(signum)
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def raising_swallowed_interruptions() -> Iterator[None]:
    """A block that calls azure-ai-ml, which catches BaseException in places (its component loaders, dsl): an
    Interrupted raised in there may be swallowed, and the command would go on with the signals ignored. The block's
    end raises it again."""
    raised_before = len(Interrupted.raised)
    yield
    if len(Interrupted.raised) > raised_before:
        raise Interrupted(Interrupted.raised[-1])


@dataclass
class StepResult:
    name: str
    status: str  # "completed" | "reused" | "failed"
    seconds: float
    outputs: dict[str, Path]
    reused_from: str | None = None


@dataclass(frozen=True)
class Started:
    """A step the host is running."""

    step: Step
    at: float
    outputs: dict[str, Path]
    log: Path
    mlflow_run_id: str
    read_only: ReadOnly = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.step.name


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    mlflow_run_id: str | None = None


def plan_problem(plan: Plan) -> str | None:
    """The first thing that makes ``plan`` unsafe or certain to fail, known before any step runs: an additional
    include that is not there, a string value (a file's name, on Azure ML the end of a data input's path) outside
    quotes that a shell would not read as one plain word, a value its input refuses (a ``-p`` override, config.yml, a
    default). None if there is none."""
    for step in plan.steps:
        if problem := missing_include(step):
            return problem
        unquoted = unquoted_inputs(step.command, step.inputs)
        for name, spec in step.inputs.items():
            if spec.binding.node:
                continue
            source = spec.binding.pipeline_input
            value = plan.inputs.get(source) if source else spec.binding.value
            value = spec.default if value is None else value
            word = file_name(str(value)) if spec.is_path else str(value)
            if name in unquoted and value is not None and not PLAIN_WORD.fullmatch(word):
                kind = "data" if spec.is_path else "string"
                return f"step {step.name!r}: the command fills in {kind} input {name!r} ({word!r}) outside quotes"
            if problem := spec.problem(value):
                given = f"pipeline parameter {source!r}" if source else "its value"
                return f"step {step.name!r} input {name!r} ({given}): {problem}"
    return None


def output_readers(plan: Plan) -> dict[tuple[str, str], list[str]]:
    """Each step output something reads: the steps that read it, and the pipeline's outputs it is."""
    readers: dict[tuple[str, str], list[str]] = {}
    for step in plan.steps:
        for spec in step.inputs.values():
            if spec.binding.node:
                readers.setdefault((spec.binding.node, spec.binding.output or ""), []).append(step.name)
    for name, source in plan.outputs.items():
        readers.setdefault(source, []).append(f"the pipeline's output {name!r}")
    return readers


def unwritten_output(started: Started, readers: dict[tuple[str, str], list[str]]) -> str | None:
    """An output a step that exited 0 did not write, in one line; None if it wrote them all.

    As on Azure ML: a ``uri_file`` output is a file the step writes, and without it there is nothing to upload or
    read. A folder output (uri_folder, mltable, a model) left empty is no error by itself, and the step completes
    there; but its datastore path then holds nothing, so mounting it as another step's input fails ("does not
    contain any data"): here the step that left it empty fails instead, naming what reads it.
    """
    for name, folder in started.outputs.items():
        kind = started.step.outputs[name]
        if kind == "uri_file" and not output_path(folder, kind).is_file():
            return f"it exited 0 but did not write its output {name!r} (uri_file) at {output_path(folder, kind)}"
        read_by = readers.get((started.name, name))
        if kind != "uri_file" and read_by and not any(folder.iterdir()):
            return (
                f"it exited 0 but left its output {name!r} ({kind}) empty, which {', '.join(read_by)} reads: "
                "on Azure ML there would be no data to mount there"
            )
    return None


def new_run_id() -> str:
    """A new run's id: its start time, to the microsecond. Run ids sort as the runs started, which is how the newest
    run is told (the latest model, `score`'s default); ids of one second once took a random suffix instead, and sorted
    at random."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"


Progress = Callable[[str], None]


class LocalRunner:
    """Runs plans on a step host. Before a run starts, it knows which steps it will reuse (``steps_to_run``): a run
    that reuses every step needs no step host and writes no MLflow run (``host`` may then be None), only its
    ``run.json``, which names the runs each step was reused from."""

    def __init__(
        self,
        runs_dir: Path,
        host: StepHost | None,
        tracking: TrackingTarget,
        reuse: bool = True,
        progress: Progress = print,
        parallel: int = os.cpu_count() or 1,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel={parallel} is invalid: at least one step must run at a time")
        self.runs_dir = runs_dir
        self.parallel = parallel
        self.host = host
        self.tracking = tracking
        self.registry = registry_uri(tracking.uri, os.environ)  # where the steps register models
        self.reuse = reuse
        self.progress = progress
        self.index = ReuseIndex(runs_dir)
        self.running: dict[str, Started] = {}
        self.prepared: Plan | None = None
        self.snapshots: dict[str, Snapshot] = {}  # each step's code, listed before the run starts
        self.readers: dict[tuple[str, str], list[str]] = {}  # each step output something reads: what reads it
        self.keys: dict[str, str] = {}  # what makes each step's outputs what they are (reuse.step_key)
        self.earlier: dict[str, dict[str, Any]] = {}  # the intact reuse entry of each step that will be reused
        self.changed: dict[str, str] = {}  # why a step's earlier outputs cannot be reused: they changed since
        self.registry_models: dict[str, str] = {}  # a step that decides from the registry: the model it reads there

    def steps_to_run(self, plan: Plan) -> list[Step]:
        """The steps a run of ``plan`` will run rather than reuse, as the inputs, the earlier outputs and the model
        registry are now, in the order they start: what a step host must load for (none: no host is needed)."""
        self.prepare(plan)
        return [step for step in plan.steps if step.name not in self.earlier]

    def prepare(self, plan: Plan) -> None:
        """Everything known before a run starts: the plan is sound, the steps' code listed, their keys and the
        earlier outputs each can reuse. A step's key follows its upstream steps' keys, not their outputs' places."""
        if self.prepared is plan:
            return
        if problem := plan_problem(plan):
            raise PlanError(problem)
        # As Azure ML takes every step's code when the job is submitted; what a snapshot must not hold stops it here.
        self.snapshots = {step.name: snapshot_files(step, leave_out=self.runs_dir) for step in plan.steps}
        self.readers = output_readers(plan)
        self.keys, self.earlier, self.changed, self.registry_models = {}, {}, {}, {}
        places = {(step.name, output): Path(step.name, output) for step in plan.steps for output in step.outputs}
        for step in plan.steps:
            values = resolve_inputs(step, plan.inputs, places)
            self.keys[step.name] = step_key(step, values, self.keys, self.snapshots[step.name])
            if not step.deterministic and step.registry_input in values:
                self.registry_models[step.name] = str(values[step.registry_input])
            reused_by = self.reuse_key(step)
            if not (self.reuse and reused_by):
                continue
            earlier, changed = self.index.lookup(reused_by)
            if earlier:
                self.earlier[step.name] = earlier
            elif changed:
                self.changed[step.name] = changed
        self.prepared = plan

    def reuse_key(self, step: Step) -> str | None:
        """What ``step`` is reused by: its key; for a step that decides from a model registry, its key with the state
        the registry is in now (as it was when the step last ended, the step is reused). None: never reused, as a
        step that is not deterministic is never reused on Azure ML."""
        if step.deterministic:
            return self.keys[step.name]
        model = self.registry_models.get(step.name)
        state = registry_state(self.registry, model) if model is not None else None
        return None if state is None else hashlib.sha256(f"{self.keys[step.name]} {state}".encode()).hexdigest()

    def run(self, plan: Plan, run_id: str | None = None) -> RunResult:
        to_run = self.steps_to_run(plan)
        for note in plan.notes:
            self.progress(f"note: {note}")
        run_id = run_id or new_run_id()
        result = RunResult(run_id=run_id, run_dir=self.runs_dir / run_id, status="running")
        result.run_dir.mkdir(parents=True)
        try:
            if to_run:  # tracked in MLflow as Azure ML tracks a pipeline job: a run that only reuses is not one
                result.mlflow_run_id = self.started_host().request(
                    "start_pipeline",
                    run_name=run_id,
                    params=plan.inputs,
                    tracking_uri=self.tracking.uri,
                    experiment=self.tracking.experiment,
                    artifacts_dir=str(self.tracking.artifacts_dir),
                )["run_id"]
                self.started_host().request("preload", folders=list(map(str, code_folders(to_run))))
            produced = self.run_steps(plan, result)
        except Interrupted as interruption:
            self.stop(plan, result, interruption)
            raise
        except StepFailed as failure:
            result.status = "failed"
            result.steps.append(StepResult(failure.step, "failed", 0.0, {}))
            self.end(result, failing=True)
            raise
        except BaseException:
            result.status = "failed"
            self.end(result, failing=True)
            raise
        result.status = "completed"
        result.outputs = {name: produced[source] for name, source in plan.outputs.items()}
        self.end(result)
        return result

    def started_host(self) -> StepHost:
        if self.host is None:
            raise ValueError("a run with steps to run needs a step host")
        return self.host

    def end(self, result: RunResult, failing: bool = False) -> None:
        """The run ended: in MLflow, and in run.json. After a failure, the store or the disk failing here too goes
        unsaid: the first error is the one that tells what happened."""
        with contextlib.suppress(*((StepHostError, OSError) if failing else ())):
            try:
                if result.mlflow_run_id:
                    self.started_host().request("end_pipeline", status=result.status)
            finally:
                write_summary(result)

    def stop(self, plan: Plan, result: RunResult, interruption: Interrupted) -> None:
        """SIGINT or SIGTERM: stop the host and its steps, mark the run killed, remove what killed steps wrote."""
        result.status = "killed"
        stopped = {*self.running, *(self.host.interrupt() if self.host else ())}
        self.running.clear()
        finished = {step.name for step in result.steps}
        for step in plan.steps:
            if step.name in finished:
                continue
            for output in step.outputs:
                shutil.rmtree(result.run_dir / step.name / output, ignore_errors=True)
            if step.name in stopped:
                result.steps.append(StepResult(step.name, "killed", 0.0, {}))
        write_summary(result, interrupted_by=str(interruption))
        tracked = " and MLflow" if result.mlflow_run_id else ""
        steps = f"; stopped {', '.join(sorted(stopped))} and removed their outputs" if stopped else ""
        interruption.summary = f"run {result.run_id} marked killed in {result.run_dir / 'run.json'}{tracked}{steps}"

    def run_steps(self, plan: Plan, result: RunResult) -> dict[tuple[str, str], Path]:
        """Every step once its inputs exist, as many at a time as ``parallel`` allows, as Azure ML would."""
        produced: dict[tuple[str, str], Path] = {}
        waiting = list(plan.steps)
        running = self.running
        while waiting or running:
            ready = [step for step in waiting if step.upstream <= {s.name for s in result.steps}]
            for step in ready[: max(self.parallel - len(running), 0)]:
                waiting.remove(step)
                self.progress(f"[{len(plan.steps) - len(waiting)}/{len(plan.steps)}] {step.name}: {step.display_name}")
                started = self.start_step(step, plan, result, produced)
                if isinstance(started, StepResult):  # reused: its outputs exist already
                    self.finish(started, step, result, produced)
                    break  # what it produced may make more steps ready
                running[step.name] = started
            else:
                if running:
                    reply = self.started_host().request("wait_step")
                    ended = self.end_step(running.pop(reply["step"]), reply["returncode"], running, result.run_id)
                    self.finish(ended, plan.step(ended.name), result, produced)
        return produced

    def finish(
        self, step_result: StepResult, step: Step, result: RunResult, produced: dict[tuple[str, str], Path]
    ) -> None:
        """Record a step that ended; what it produced is what the steps after it read (a file, for ``uri_file``)."""
        result.steps.append(step_result)
        for name, folder in step_result.outputs.items():
            produced[(step_result.name, name)] = output_path(folder, step.outputs[name])

    def start_step(
        self, step: Step, plan: Plan, result: RunResult, produced: dict[tuple[str, str], Path]
    ) -> Started | StepResult:
        started = time.perf_counter()
        step_dir = result.run_dir / step.name
        outputs = {name: step_dir / name for name in step.outputs}
        if changed := self.changed.get(step.name):
            self.progress(f"      {step.name}: not reused, its earlier outputs changed since ({changed})")
        if earlier := self.earlier.get(step.name):
            step_dir.mkdir()
            for name, path in outputs.items():
                link_tree(Path(earlier["outputs"][name]), path)
            if result.mlflow_run_id:
                self.started_host().request(
                    "record_reused_step", step=step.name, earlier_run_id=earlier.get("mlflow_run_id")
                )
            self.progress(f"      {step.name}: reused outputs of run {earlier['run_id']} (nothing changed)")
            return StepResult(step.name, "reused", time.perf_counter() - started, outputs, earlier["run_id"])
        values = resolve_inputs(step, plan.inputs, produced)
        for path in outputs.values():
            path.mkdir(parents=True)
        workdir = fresh_code_copy(step, step_dir, self.snapshots[step.name])
        given = {name: output_path(folder, step.outputs[name]) for name, folder in outputs.items()}
        argv = render_command(step.command, downloaded(step, values, step_dir), given)
        log = step_dir / "step.log"
        (step_dir / "command.txt").write_text(shlex.join(argv) + "\n")
        read_only = read_only_inputs(step, values, self.runs_dir)
        reply = self.started_host().request("start_step", step=step.name, argv=argv, cwd=str(workdir), log=str(log))
        return Started(step, started, outputs, log, reply["run_id"], read_only)

    def end_step(self, started: Started, returncode: int, others: dict[str, Started], run_id: str) -> StepResult:
        seconds = time.perf_counter() - started.at
        if returncode == 0 and (wrong := written_input(started.read_only) or unwritten_output(started, self.readers)):
            with started.log.open("a") as log:  # the step's last word, as on Azure ML, where the step itself fails
                log.write(f"error: {wrong}\n")
            returncode = 1
        if returncode != 0:
            for path in started.outputs.values():
                shutil.rmtree(path, ignore_errors=True)
            if started.step.may_fail:  # a sweep trial, as on Azure ML: the sweep picks the best of those that succeed
                self.progress(
                    f"      {started.name}: failed (exit code {returncode}), left out of its sweep; its log: "
                    f"{started.log}"
                )
                return StepResult(started.name, "failed", seconds, {})
            while others:  # no step is left running behind the failure
                others.pop(self.started_host().request("wait_step")["step"])
            raise StepFailed(started.name, returncode, started.log)
        # A step that decides from the registry is reused while the registry holds what the step left there.
        if key := self.reuse_key(started.step):
            self.index.record(key, run_id, started.outputs, started.mlflow_run_id)
        self.progress(f"      {started.name}: done in {seconds:.1f}s")
        return StepResult(started.name, "completed", seconds, started.outputs)


@contextlib.contextmanager
def hosting(runner: LocalRunner) -> Iterator[LocalRunner]:
    """A block in which ``runner`` may be given a step host of its own: on SIGINT or SIGTERM the host is stopped,
    with its steps, whether a run had started or not (nothing may outlive the command), and closed at the end. A
    host the runner was given stays up."""
    given = runner.host
    try:
        yield runner
    except Interrupted:
        if runner.host:
            runner.host.interrupt()
        raise
    finally:
        if runner.host and runner.host is not given:
            runner.host.close()


def write_summary(result: RunResult, **extra: str) -> None:
    """``run.json`` in the run's folder: its status, steps and outputs, replaced whole at every change."""
    summary = {
        "run_id": result.run_id,
        "status": result.status,
        **extra,
        "mlflow_run_id": result.mlflow_run_id,
        "steps": [
            {
                "name": step.name,
                "status": step.status,
                "seconds": round(step.seconds, 3),
                "outputs": {name: str(path) for name, path in step.outputs.items()},
                "reused_from": step.reused_from,
            }
            for step in result.steps
        ],
        "outputs": {name: str(path) for name, path in result.outputs.items()},
    }
    write_record(result.run_dir / "run.json", summary, indent=2)
