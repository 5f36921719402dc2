# Maintained by the template this project was rendered from, at the version in aml_pipeline_kit/__init__.py:
# update with `cruft update`, don't edit here (the template's own tests cover this file).
"""Run a pipeline ``Plan`` on this machine, step by step, as Azure ML would.

Each step's own command line is filled in with local paths and values and run in
the step's code folder with this project's Python. Outputs go to
``runs/<run id>/<step>/<output>/``, a log per step beside them. A deterministic
step whose code, command, parameters and inputs hash the same as an earlier
successful step is reused instead of run. Imports no azure-ai-ml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .plan import INPUT_PLACEHOLDER, OPTIONAL_BLOCK, PLACEHOLDER, PLAIN_WORD, Plan, PlanError, Step, unquoted_strings
from .shell import SHELL, needs_shell, shell_line
from .step_host import StepHost, TrackingTarget

IGNORED_CODE_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
CODE_COPY = ".code"  # in a step's run folder: the copy of its code it runs in
INPUT_COPIES = ".inputs"  # in a step's run folder: its inputs of mode download, copied


class StepFailed(RuntimeError):
    def __init__(self, step: str, returncode: int, log: Path) -> None:
        self.step, self.returncode, self.log = step, returncode, log
        super().__init__(f"step {step!r} failed with exit code {returncode}; its log: {log}")

    def last_line(self) -> str:
        """The step's own last word: its one-line error, or the exception line ending a traceback."""
        lines = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else "(its log is empty)"


class Interrupted(BaseException):  # a BaseException, as KeyboardInterrupt: no `except Exception` swallows it
    """SIGINT or SIGTERM, raised into a run by the caller's signal handler: the run stops, marked killed."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.summary = ""  # what the runner did about it, for the one line the caller prints
        super().__init__(signal.Signals(signum).name)


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

    name: str
    at: float
    outputs: dict[str, Path]
    key: str
    log: Path
    mlflow_run_id: str
    may_fail: bool = False
    read_only: dict[str, tuple[Path, dict[str, list[int]]]] = field(default_factory=dict)  # input -> its files


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    mlflow_run_id: str | None = None


def resolve_inputs(
    step: Step, pipeline_inputs: dict[str, Any], produced: dict[tuple[str, str], Path]
) -> dict[str, Any]:
    """Each input's local value: a pipeline input, an upstream output folder, a literal, or the default."""
    values: dict[str, Any] = {}
    for name, spec in step.inputs.items():
        binding = spec.binding
        if binding.node:
            value: Any = produced.get((binding.node, binding.output or ""))
            if value is None and not spec.optional:  # optional: a sweep trial's output, the trial may have failed
                source = f"{binding.node}.{binding.output}"
                raise PlanError(f"step {step.name!r} input {name!r} reads {source}, which no step produced")
        elif binding.pipeline_input:
            value = pipeline_inputs.get(binding.pipeline_input)
        else:
            value = binding.value
        if value is None:
            value = spec.default
        if value is None and not spec.optional:
            raise PlanError(f"step {step.name!r} input {name!r} has no value and no default")
        values[name] = value
    return values


def render_command(command: str, inputs: dict[str, Any], outputs: dict[str, Path]) -> list[str]:
    """The command's argv with ``${{inputs.x}}``, ``${{outputs.y}}`` and ``$[[optional]]`` blocks resolved.

    The command is split into words first, as a shell splits it, then each placeholder is filled in once: a value
    is never searched for placeholders itself, whatever it holds (a column named ``${{outputs.model}}``).
    """

    def keep_optional(block: re.Match[str]) -> str:
        names = INPUT_PLACEHOLDER.findall(block[1])
        return block[1] if all(inputs.get(name) is not None for name in names) else ""

    def value(match: re.Match[str]) -> str:
        kind, name = match[1], match[2]
        declared = inputs if kind == "inputs" else outputs
        if name not in declared:
            raise PlanError(f"command uses {match[0]}, which the component does not declare")
        if declared[name] is None:
            raise PlanError(f"command uses optional input {name!r} outside a $[[...]] block, but it is unset")
        return str(declared[name])

    command = OPTIONAL_BLOCK.sub(keep_optional, command)
    if needs_shell(command):  # Azure ML runs every command in a shell; a plain `python x.py` needs none
        return [SHELL, "-c", shell_line(command, value)]
    argv = [PLACEHOLDER.sub(value, token) for token in shlex.split(command)]
    if argv and argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


def plan_problem(plan: Plan) -> str | None:
    """The first thing that makes ``plan`` unsafe or certain to fail, known before any step runs: a string value
    outside quotes that a shell would not read as one plain word, a value its input refuses (a ``-p`` override,
    config.yml, a default). None if there is none."""
    for step in plan.steps:
        unquoted = unquoted_strings(step.command, step.inputs)
        for name, spec in step.inputs.items():
            if spec.binding.node:
                continue
            source = spec.binding.pipeline_input
            value = plan.inputs.get(source) if source else spec.binding.value
            value = spec.default if value is None else value
            if name in unquoted and value is not None and not PLAIN_WORD.fullmatch(str(value)):
                return f"step {step.name!r}: the command fills in string input {name!r} ({value!r}) outside quotes"
            if problem := spec.problem(value):
                given = f"pipeline parameter {source!r}" if source else "its value"
                return f"step {step.name!r} input {name!r} ({given}): {problem}"
    return None


def iter_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not IGNORED_CODE_PARTS.intersection(path.parts) and path.suffix != ".pyc":
            yield path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(path: Path) -> str:
    """sha256 of a file, or of every file (with its relative name) in a folder."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else list(iter_files(path))
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def step_key(step: Step, values: dict[str, Any], upstream_keys: dict[str, str]) -> str:
    """What makes a step's outputs what they are: code, command, parameters and input contents."""
    inputs: dict[str, Any] = {}
    for name, spec in step.inputs.items():
        if spec.binding.node:
            inputs[name] = {"step": upstream_keys[spec.binding.node], "output": spec.binding.output}
        elif spec.is_path and values[name] is not None and Path(values[name]).exists():  # not a URL
            inputs[name] = {"content": content_digest(Path(values[name]))}
        else:
            inputs[name] = values[name]
    code = content_digest(step.code) if step.code else None
    identity = {"command": step.command, "code": code, "inputs": inputs}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def fresh_code_copy(step: Step, step_dir: Path) -> Path:
    """The folder a step runs in: a fresh copy of its code, as Azure ML snapshots code per job (what a step writes
    beside its script stays in its run); an empty folder for a step without code."""
    workdir = step_dir / CODE_COPY
    if step.code is None:
        workdir.mkdir(parents=True)
    else:
        shutil.copytree(step.code, workdir, ignore=shutil.ignore_patterns(*IGNORED_CODE_PARTS, "*.pyc"))
    return workdir


def downloaded(step: Step, values: dict[str, Any], step_dir: Path) -> dict[str, Any]:
    """``values`` with each ``mode: download`` data input copied into the step's run folder, as Azure ML gives it:
    a copy of the step's own, which it may change without touching the source."""
    delivered = dict(values)
    for name, spec in step.inputs.items():
        source = Path(values[name]) if spec.is_path and values[name] is not None else None
        if spec.binding.mode == "download" and source and source.exists():
            copy = step_dir / INPUT_COPIES / name
            if source.is_dir():
                shutil.copytree(source, copy)
            else:
                copy.mkdir(parents=True)
                copy = Path(shutil.copy2(source, copy))
            delivered[name] = str(copy)
    return delivered


def output_path(folder: Path, kind: str) -> Path:
    """Where a step writes an output kept in ``folder``: the folder itself, or for a ``uri_file`` a file in it named
    as the output, as Azure ML gives it (``.../wd/<output>/<output>``, the folder there, the file not yet)."""
    return folder / folder.name if kind == "uri_file" else folder


def read_only_inputs(step: Step, values: dict[str, Any]) -> dict[str, tuple[Path, dict[str, list[int]]]]:
    """The files of each input the step gets read-only, taken as it starts: every data input but those of mode
    download (a copy of its own); Azure ML's default is ro_mount, and an input has no writable mode."""
    paths = {
        name: Path(values[name])
        for name, spec in step.inputs.items()
        if spec.is_path and spec.binding.mode != "download" and values[name] is not None
    }
    return {name: (path, file_states(path)) for name, path in paths.items() if path.exists()}


def written_input(started: Started) -> str | None:
    """What a step that ended wrote into an input it had read-only, in one line; None if it wrote into none. A
    read-only mount needs privileges a local run lacks: the files are compared instead (names, sizes, times)."""
    for name, (path, before) in started.read_only.items():
        after = file_states(path) if path.exists() else {}
        if change := difference(path, before, after):
            return (
                f"its input {name!r} is mounted read-only on Azure ML (mode ro_mount), but the step wrote into it: "
                f"{change}; write to an output, or give the input mode download (a copy of the step's own)"
            )
    return None


def link_tree(source: Path, destination: Path) -> None:
    """A copy of ``source`` that shares the files' storage where the file system allows."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link_or_copy)


def manifest(folder: Path) -> dict[str, list[Any]]:
    """Every file in ``folder``: its relative name, size and sha256."""
    return {
        path.relative_to(folder).as_posix(): [path.stat().st_size, file_sha256(path)]
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def manifest_difference(folder: Path, expected: dict[str, list[Any]]) -> str | None:
    """How ``folder`` differs from its manifest, in a few words; None if every file is as it was."""
    if not folder.is_dir():
        return f"{folder} is gone"
    return difference(folder, expected, manifest(folder))


def file_states(path: Path) -> dict[str, list[int]]:
    """Every file at ``path`` (a file or a folder): its relative name, size and modification time. Cheap: what
    tells whether a step wrote into an input, where hashing every file would cost as much as reading it."""
    files = [path] if path.is_file() else sorted(item for item in path.rglob("*") if item.is_file())
    return {
        (file.relative_to(path).as_posix() if file != path else ""): [file.stat().st_size, file.stat().st_mtime_ns]
        for file in files
    }


def difference(folder: Path, expected: dict[str, list[Any]], found: dict[str, list[Any]]) -> str | None:
    """The first file whose entry differs between ``expected`` and ``found`` (names relative to ``folder``)."""
    for name in sorted(expected.keys() | found.keys()):
        if name not in found:
            return f"{folder / name} is gone"
        if name not in expected:
            return f"{folder / name} was added"
        if found[name] != expected[name]:
            return f"{folder / name} changed"
    return None


class ReuseIndex:
    """Earlier successful steps by key: ``runs/.reuse/<key>.json``, with a manifest of each output (names, sizes,
    sha256) taken when the step succeeded. An entry whose outputs no longer match it is never reused."""

    def __init__(self, runs_dir: Path) -> None:
        self.folder = runs_dir / ".reuse"

    def lookup(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """The entry for ``key`` if its outputs are intact; otherwise None, and why (None if there is no entry)."""
        path = self.folder / f"{key}.json"
        if not path.is_file():
            return None, None
        entry = json.loads(path.read_text())
        manifests = entry.get("manifests") or {}
        for name, output in entry["outputs"].items():
            if name not in manifests:
                return None, f"{output} has no manifest"
            if difference := manifest_difference(Path(output), manifests[name]):
                return None, difference
        return entry, None

    def record(self, key: str, run_id: str, outputs: dict[str, Path], mlflow_run_id: str | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {
            "run_id": run_id,
            "outputs": {name: str(path) for name, path in outputs.items()},
            "manifests": {name: manifest(path) for name, path in outputs.items()},
            "mlflow_run_id": mlflow_run_id,
        }
        # A name of its own: runs in parallel may record the same key at the same moment.
        temporary = self.folder / f".{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        temporary.write_text(json.dumps(entry))
        temporary.replace(self.folder / f"{key}.json")


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


Progress = Callable[[str], None]


class LocalRunner:
    def __init__(
        self,
        runs_dir: Path,
        host: StepHost,
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
        self.reuse = reuse
        self.progress = progress
        self.index = ReuseIndex(runs_dir)
        self.running: dict[str, Started] = {}

    def run(self, plan: Plan, run_id: str | None = None) -> RunResult:
        if problem := plan_problem(plan):
            raise PlanError(problem)
        for note in plan.notes:
            self.progress(f"note: {note}")
        run_id = run_id or new_run_id()
        result = RunResult(run_id=run_id, run_dir=self.runs_dir / run_id, status="running")
        result.run_dir.mkdir(parents=True)
        try:
            result.mlflow_run_id = self.host.request(
                "start_pipeline",
                run_name=run_id,
                params=plan.inputs,
                tracking_uri=self.tracking.uri,
                experiment=self.tracking.experiment,
                artifacts_dir=str(self.tracking.artifacts_dir),
            )["run_id"]
            produced = self.run_steps(plan, result)
        except Interrupted as interruption:
            self.stop(plan, result, interruption)
            raise
        except StepFailed as failure:
            result.status = "failed"
            result.steps.append(StepResult(failure.step, "failed", 0.0, {}))
            self.end(result)
            raise
        except BaseException:
            result.status = "failed"
            self.end(result)
            raise
        result.status = "completed"
        result.outputs = {name: produced[source] for name, source in plan.outputs.items()}
        self.end(result)
        return result

    def end(self, result: RunResult) -> None:
        try:
            if result.mlflow_run_id:
                self.host.request("end_pipeline", status=result.status)
        finally:
            self.write_summary(result)

    def stop(self, plan: Plan, result: RunResult, interruption: Interrupted) -> None:
        """SIGINT or SIGTERM: stop the host and its steps, mark the run killed, remove what killed steps wrote."""
        result.status = "killed"
        stopped = {*self.running, *self.host.interrupt()}
        self.running.clear()
        finished = {step.name for step in result.steps}
        for step in plan.steps:
            if step.name in finished:
                continue
            for output in step.outputs:
                shutil.rmtree(result.run_dir / step.name / output, ignore_errors=True)
            if step.name in stopped:
                result.steps.append(StepResult(step.name, "killed", 0.0, {}))
        self.write_summary(result, interrupted_by=str(interruption))
        steps = f"; stopped {', '.join(sorted(stopped))} and removed their outputs" if stopped else ""
        interruption.summary = f"run {result.run_id} marked killed in {result.run_dir / 'run.json'} and MLflow{steps}"

    def run_steps(self, plan: Plan, result: RunResult) -> dict[tuple[str, str], Path]:
        """Every step once its inputs exist, as many at a time as ``parallel`` allows, as Azure ML would."""
        produced: dict[tuple[str, str], Path] = {}
        keys: dict[str, str] = {}
        waiting = list(plan.steps)
        running = self.running
        while waiting or running:
            ready = [step for step in waiting if step.upstream <= {s.name for s in result.steps}]
            for step in ready[: max(self.parallel - len(running), 0)]:
                waiting.remove(step)
                self.progress(f"[{len(plan.steps) - len(waiting)}/{len(plan.steps)}] {step.name}: {step.display_name}")
                started = self.start_step(step, plan, result, produced, keys)
                if isinstance(started, StepResult):  # reused: its outputs exist already
                    self.finish(started, step, result, produced)
                    break  # what it produced may make more steps ready
                running[step.name] = started
            else:
                if running:
                    reply = self.host.request("wait_step")
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
        self,
        step: Step,
        plan: Plan,
        result: RunResult,
        produced: dict[tuple[str, str], Path],
        keys: dict[str, str],
    ) -> Started | StepResult:
        started = time.perf_counter()
        values = resolve_inputs(step, plan.inputs, produced)
        step_dir = result.run_dir / step.name
        outputs = {name: step_dir / name for name in step.outputs}
        key = keys[step.name] = step_key(step, values, keys)
        earlier, changed = self.index.lookup(key) if self.reuse and step.deterministic else (None, None)
        if changed:
            self.progress(f"      {step.name}: not reused, its earlier outputs changed since ({changed})")
        if earlier:
            step_dir.mkdir()
            for name, path in outputs.items():
                link_tree(Path(earlier["outputs"][name]), path)
            self.host.request("record_reused_step", step=step.name, earlier_run_id=earlier.get("mlflow_run_id"))
            self.progress(f"      {step.name}: reused outputs of run {earlier['run_id']} (nothing changed)")
            return StepResult(step.name, "reused", time.perf_counter() - started, outputs, earlier["run_id"])
        for path in outputs.values():
            path.mkdir(parents=True)
        workdir = fresh_code_copy(step, step_dir)
        given = {name: output_path(folder, step.outputs[name]) for name, folder in outputs.items()}
        argv = render_command(step.command, downloaded(step, values, step_dir), given)
        log = step_dir / "step.log"
        (step_dir / "command.txt").write_text(shlex.join(argv) + "\n")
        read_only = read_only_inputs(step, values)
        reply = self.host.request("start_step", step=step.name, argv=argv, cwd=str(workdir), log=str(log))
        return Started(step.name, started, outputs, key, log, reply["run_id"], step.may_fail, read_only)

    def end_step(self, started: Started, returncode: int, others: dict[str, Started], run_id: str) -> StepResult:
        seconds = time.perf_counter() - started.at
        if returncode == 0 and (written := written_input(started)):
            with started.log.open("a") as log:  # the step's last word, as on Azure ML, where the write itself fails
                log.write(f"error: {written}\n")
            returncode = 1
        if returncode != 0:
            for path in started.outputs.values():
                shutil.rmtree(path, ignore_errors=True)
            if started.may_fail:  # a sweep trial, as on Azure ML: the sweep picks the best of those that succeed
                self.progress(
                    f"      {started.name}: failed (exit code {returncode}), left out of its sweep; its log: "
                    f"{started.log}"
                )
                return StepResult(started.name, "failed", seconds, {})
            while others:  # no step is left running behind the failure
                others.pop(self.host.request("wait_step")["step"])
            raise StepFailed(started.name, returncode, started.log)
        self.index.record(started.key, run_id, started.outputs, started.mlflow_run_id)
        self.progress(f"      {started.name}: done in {seconds:.1f}s")
        return StepResult(started.name, "completed", seconds, started.outputs)

    def write_summary(self, result: RunResult, **extra: str) -> None:
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
        (result.run_dir / "run.json").write_text(json.dumps(summary, indent=2))
