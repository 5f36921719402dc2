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
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .plan import Plan, PlanError, Step

INPUT_PLACEHOLDER = re.compile(r"\$\{\{inputs\.(\w+)\}\}")
OUTPUT_PLACEHOLDER = re.compile(r"\$\{\{outputs\.(\w+)\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
LOG_TAIL_LINES = 20
IGNORED_CODE_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


class StepFailed(RuntimeError):
    def __init__(self, step: str, returncode: int, log: Path) -> None:
        self.step, self.returncode, self.log = step, returncode, log
        super().__init__(f"step {step!r} failed with exit code {returncode}; its log: {log}")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


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
            if value is None:
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
    """The command's argv with ``${{inputs.x}}``, ``${{outputs.y}}`` and ``$[[optional]]`` blocks resolved."""

    def keep_optional(block: re.Match[str]) -> str:
        names = INPUT_PLACEHOLDER.findall(block[1])
        return block[1] if all(inputs.get(name) is not None for name in names) else ""

    def fill(token: str) -> str:
        def input_value(match: re.Match[str]) -> str:
            if match[1] not in inputs:
                raise PlanError(f"command uses {match[0]}, which the component does not declare")
            if inputs[match[1]] is None:
                raise PlanError(f"command uses optional input {match[1]!r} outside a $[[...]] block, but it is unset")
            return str(inputs[match[1]])

        def output_value(match: re.Match[str]) -> str:
            if match[1] not in outputs:
                raise PlanError(f"command uses {match[0]}, which the component does not declare")
            return str(outputs[match[1]])

        return OUTPUT_PLACEHOLDER.sub(output_value, INPUT_PLACEHOLDER.sub(input_value, token))

    argv = [fill(token) for token in shlex.split(OPTIONAL_BLOCK.sub(keep_optional, command))]
    if argv and argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


def iter_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not IGNORED_CODE_PARTS.intersection(path.parts) and path.suffix != ".pyc":
            yield path


def content_digest(path: Path) -> str:
    """sha256 of a file, or of every file (with its relative name) in a folder."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else list(iter_files(path))
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def step_key(step: Step, values: dict[str, Any], upstream_keys: dict[str, str]) -> str:
    """What makes a step's outputs what they are: code, command, parameters and input contents."""
    inputs: dict[str, Any] = {}
    for name, spec in step.inputs.items():
        if spec.binding.node:
            inputs[name] = {"step": upstream_keys[spec.binding.node], "output": spec.binding.output}
        elif spec.is_path and values[name] is not None:
            inputs[name] = {"content": content_digest(Path(values[name]))}
        else:
            inputs[name] = values[name]
    identity = {"command": step.command, "code": content_digest(step.code), "inputs": inputs}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def link_tree(source: Path, destination: Path) -> None:
    """A copy of ``source`` that shares the files' storage where the file system allows."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link_or_copy)


class ReuseIndex:
    """Earlier successful steps by key: ``runs/.reuse/<key>.json``."""

    def __init__(self, runs_dir: Path) -> None:
        self.folder = runs_dir / ".reuse"

    def lookup(self, key: str) -> dict[str, Any] | None:
        path = self.folder / f"{key}.json"
        if not path.is_file():
            return None
        entry = json.loads(path.read_text())
        if all(Path(output).is_dir() for output in entry["outputs"].values()):
            return entry
        return None

    def record(self, key: str, run_id: str, outputs: dict[str, Path], mlflow_run_id: str | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {"run_id": run_id, "outputs": {k: str(v) for k, v in outputs.items()}, "mlflow_run_id": mlflow_run_id}
        temporary = self.folder / f"{key}.json.tmp"
        temporary.write_text(json.dumps(entry))
        temporary.replace(self.folder / f"{key}.json")


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class StepHostError(RuntimeError):
    """The step host died or refused a request."""


@dataclass(frozen=True)
class TrackingTarget:
    """The MLflow store and experiment a local run is tracked in."""

    uri: str
    experiment: str
    artifacts_dir: Path


class StepHost:
    """The runner's handle on the warm step host process (see ``step_host``); it serves run after run."""

    def __init__(self, warm: TrackingTarget, step_folders: list[Path]) -> None:
        package_parent = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])),
            # Forked steps must not share the host's SQLite connections: open one per use.
            "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
        }
        argv = [sys.executable, "-m", f"{__package__}.step_host", warm.uri, warm.experiment, str(warm.artifacts_dir)]
        self.process = subprocess.Popen(
            [*argv, *map(str, step_folders)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        self.ready = False

    def request(self, action: str, **payload: Any) -> dict[str, Any]:
        if not self.ready:
            self._reply()
            self.ready = True
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"action": action, **payload}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise StepHostError(f"the step host exited with code {self.process.wait()}") from None
        return self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise StepHostError(f"the step host exited with code {self.process.wait()}; its errors are above")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise StepHostError(reply["error"])
        return reply

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait()


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
        self.runs_dir = runs_dir
        self.parallel = parallel
        self.host = host
        self.tracking = tracking
        self.reuse = reuse
        self.progress = progress
        self.index = ReuseIndex(runs_dir)

    def run(self, plan: Plan, run_id: str | None = None) -> RunResult:
        run_id = run_id or new_run_id()
        result = RunResult(run_id=run_id, run_dir=self.runs_dir / run_id, status="running")
        result.run_dir.mkdir(parents=True)
        result.mlflow_run_id = self.host.request(
            "start_pipeline",
            run_name=run_id,
            params=plan.inputs,
            tracking_uri=self.tracking.uri,
            experiment=self.tracking.experiment,
            artifacts_dir=str(self.tracking.artifacts_dir),
        )["run_id"]
        try:
            produced = self.run_steps(plan, result)
        except StepFailed as failure:
            result.status = "failed"
            result.steps.append(StepResult(failure.step, "failed", 0.0, {}))
            raise
        except BaseException:
            result.status = "failed"
            raise
        else:
            result.status = "completed"
            result.outputs = {name: produced[source] for name, source in plan.outputs.items()}
        finally:
            self.host.request("end_pipeline", status=result.status)
            self.write_summary(result)
        return result

    def run_steps(self, plan: Plan, result: RunResult) -> dict[tuple[str, str], Path]:
        """Every step once its inputs exist, as many at a time as ``parallel`` allows, as Azure ML would."""
        produced: dict[tuple[str, str], Path] = {}
        keys: dict[str, str] = {}
        waiting = list(plan.steps)
        running: dict[str, Started] = {}
        while waiting or running:
            ready = [step for step in waiting if step.upstream <= {s.name for s in result.steps}]
            for step in ready[: max(self.parallel - len(running), 0)]:
                waiting.remove(step)
                self.progress(f"[{len(plan.steps) - len(waiting)}/{len(plan.steps)}] {step.name}: {step.display_name}")
                started = self.start_step(step, plan, result, produced, keys)
                if isinstance(started, StepResult):  # reused: its outputs exist already
                    self.finish(started, result, produced)
                    break  # what it produced may make more steps ready
                running[step.name] = started
            else:
                if running:
                    reply = self.host.request("wait_step")
                    ended = self.end_step(running.pop(reply["step"]), reply["returncode"], running, result.run_id)
                    self.finish(ended, result, produced)
        return produced

    def finish(self, step_result: StepResult, result: RunResult, produced: dict[tuple[str, str], Path]) -> None:
        result.steps.append(step_result)
        produced.update({(step_result.name, name): path for name, path in step_result.outputs.items()})

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
        argv = render_command(step.command, values, outputs)
        key = keys[step.name] = step_key(step, values, keys)
        earlier = self.index.lookup(key) if self.reuse and step.deterministic else None
        if earlier:
            step_dir.mkdir()
            for name, path in outputs.items():
                link_tree(Path(earlier["outputs"][name]), path)
            self.host.request("record_reused_step", step=step.name, earlier_run_id=earlier.get("mlflow_run_id"))
            self.progress(f"      {step.name}: reused outputs of run {earlier['run_id']} (nothing changed)")
            return StepResult(step.name, "reused", time.perf_counter() - started, outputs, earlier["run_id"])
        for path in outputs.values():
            path.mkdir(parents=True)
        log = step_dir / "step.log"
        (step_dir / "command.txt").write_text(shlex.join(argv) + "\n")
        reply = self.host.request("start_step", step=step.name, argv=argv, cwd=str(step.code), log=str(log))
        return Started(step.name, started, outputs, key, log, reply["run_id"])

    def end_step(self, started: Started, returncode: int, others: dict[str, Started], run_id: str) -> StepResult:
        seconds = time.perf_counter() - started.at
        if returncode != 0:
            for path in started.outputs.values():
                shutil.rmtree(path, ignore_errors=True)
            for _ in others:  # no step is left running behind the failure
                self.host.request("wait_step")
            raise StepFailed(started.name, returncode, started.log)
        self.index.record(started.key, run_id, started.outputs, started.mlflow_run_id)
        self.progress(f"      {started.name}: done in {seconds:.1f}s")
        return StepResult(started.name, "completed", seconds, started.outputs)

    def write_summary(self, result: RunResult) -> None:
        summary = {
            "run_id": result.run_id,
            "status": result.status,
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
