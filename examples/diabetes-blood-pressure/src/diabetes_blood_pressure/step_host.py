"""A warm process that runs local pipeline steps and their MLflow bookkeeping.

Starting Python and importing pandas, scikit-learn and MLflow costs seconds, and
a local run would pay it once per step. The host pays it once, while the runner
builds the pipeline graph in parallel, then runs each step's command line
``python <script> <args>`` in a forked child: same argv, working folder,
environment and ``__main__`` semantics as a fresh interpreter, without the
imports. Commands that are not ``python <script>.py ...`` run as subprocesses.

The runner talks to the host over its stdin/stdout, one JSON object per line.
"""

from __future__ import annotations

import ast
import importlib
import json
import logging
import os
import runpy
import subprocess
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from .tracking import LocalTracking

STANDARD_LIBRARY = frozenset(sys.stdlib_module_names)
# Component definitions import azure-ai-ml to describe their step; steps never need it, and it costs seconds.
NEVER_PRELOADED = frozenset({"azure"})


def script_imports(folders: Iterable[Path]) -> list[str]:
    """Top-level third-party modules imported by the Python files in ``folders`` (their own modules excluded)."""
    found: set[str] = set()
    local: set[str] = set()
    for folder in folders:
        for path in folder.glob("*.py"):
            local.add(path.stem)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module)
    skipped = STANDARD_LIBRARY | NEVER_PRELOADED | local
    return sorted(name for name in found if name.split(".")[0] not in skipped)


def preload(modules: Iterable[str]) -> None:
    """Import what the steps import; one that fails to import is left for its step to report."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the step itself will show the real error
            continue


def is_python_script(argv: list[str]) -> bool:
    return len(argv) >= 2 and argv[0] == sys.executable and argv[1].endswith(".py")


def start_script_in_child(argv: list[str], cwd: str, env: dict[str, str], log: str) -> int:
    """Fork; in the child behave as ``python script.py args`` would. Returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child never returns
        code = 1
        try:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            sys.stdin = open(os.devnull)  # noqa: SIM115  (the child's lifetime)
            sys.argv = argv[1:]
            sys.path[0] = cwd
            try:
                runpy.run_path(argv[1], run_name="__main__")
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if not isinstance(exit_.code, int | None):
                    print(exit_.code, file=sys.stderr)
            except BaseException:  # report it as the interpreter does
                traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def start_command(argv: list[str], cwd: str, env: dict[str, str], log: str) -> int:
    """Start a step's command line without waiting for it; returns its pid."""
    if is_python_script(argv):
        return start_script_in_child(argv, cwd, env, log)
    with open(log, "w") as handle:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT).pid


class Host:
    """The host's side: MLflow tracking and step execution, one request at a time, run after run."""

    def __init__(self) -> None:
        self.stores: dict[tuple[str, str, str], LocalTracking] = {}
        self.tracking: LocalTracking
        self.running: dict[int, tuple[str, str]] = {}  # pid -> (step, MLflow run id)

    def open_store(self, tracking_uri: str, experiment: str, artifacts_dir: str) -> LocalTracking:
        key = (tracking_uri, experiment, artifacts_dir)
        if key not in self.stores:
            self.stores[key] = LocalTracking(tracking_uri, experiment, Path(artifacts_dir))
        return self.stores[key]

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        action = request["action"]
        if action == "start_pipeline":
            self.tracking = self.open_store(request["tracking_uri"], request["experiment"], request["artifacts_dir"])
            return {"run_id": self.tracking.start_pipeline(request["run_name"], request["params"])}
        if action == "start_step":
            run_id, env = self.tracking.start_step(request["step"])
            pid = start_command(request["argv"], request["cwd"], env, request["log"])
            self.running[pid] = (request["step"], run_id)
            return {"run_id": run_id}
        if action == "wait_step":
            return self.wait_step()
        if action == "record_reused_step":
            self.tracking.record_reused_step(request["step"], request["earlier_run_id"])
            return {}
        if action == "end_pipeline":
            self.tracking.end_pipeline(request["status"])
            return {}
        raise ValueError(f"unknown request {action!r}")

    def wait_step(self) -> dict[str, Any]:
        """Wait for whichever started step finishes first."""
        if not self.running:
            raise ValueError("no step is running")
        pid, status = os.waitpid(-1, 0)
        step, run_id = self.running.pop(pid)
        returncode = os.waitstatus_to_exitcode(status)
        self.tracking.end_step(run_id, "FINISHED" if returncode == 0 else "FAILED")
        return {"step": step, "returncode": returncode}


def serve(requests: IO[str], replies: IO[str], host: Host) -> None:
    for line in requests:
        try:
            reply = {"ok": True, **host.handle(json.loads(line))}
        except Exception as error:  # sent back to the runner, which raises it
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    """``python -m <package>.step_host TRACKING_URI EXPERIMENT ARTIFACTS_DIR STEP_FOLDER...``

    The tracking store named here is opened while warming up; each run names its own.
    """
    tracking_uri, experiment, artifacts_dir, *step_folders = sys.argv[1:]
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints while importing must not corrupt the reply channel
    preload(script_imports(Path(folder) for folder in step_folders))
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # the store's set-up chatter, on every run
    host = Host()
    host.open_store(tracking_uri, experiment, artifacts_dir)
    replies.write(json.dumps({"ok": True, "ready": True}) + "\n")
    replies.flush()
    serve(sys.stdin, replies, host)
    # Everything is written and every step has exited: skip the seconds-long teardown of the imported modules.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
