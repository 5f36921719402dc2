"""A warm process that runs local pipeline steps and their MLflow bookkeeping.

Starting Python and importing pandas, scikit-learn and MLflow costs seconds, and a local run would pay it once per
step. The host pays it once, while the runner builds the pipeline graph in parallel, then runs each step's command
line ``python <script> <args>`` in a forked child: same argv, working folder, environment and ``__main__`` semantics
as a fresh interpreter, without the imports. Commands that are not ``python <script>.py ...`` run as subprocesses.
The host is ready once MLflow and its store are (the runs' bookkeeping); a step starts once what its own scripts
import is loaded, and the host loads what the other steps import whenever it has nothing to answer: while the
runner checks the project or builds the graph, and while steps run. It loads for the steps a run will run, in the
order they start (the folders it is started with, then those each run names, ``preload``), never for steps the run
reuses: their imports would cost a run that edits one step seconds of CPU time.

Both ends of the protocol live here: ``StepHost`` is the runner's handle, which starts the host (``main``) and talks
to it over its stdin/stdout, one JSON object per line. SIGTERM (the runner interrupted) or the end of its input (the
runner gone) stops the host: it stops the running steps, each in a process group of its own, ends their MLflow runs
and the pipeline's as killed, says which steps it stopped, and exits.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .step_imports import preload, script_imports, steps_imports, warm_mlflow
from .step_processes import is_python_script, set_apart_from_collector, signal_groups, start_command
from .tracking import LocalTracking, StoreError, first_line

STOP_SECONDS = 3  # a step asked to stop (SIGTERM) gets this long before it is killed (SIGKILL)
HOST_STOP_SECONDS = 15  # for the host to stop its steps (it gives them a few seconds) and end their MLflow runs
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Host:
    """The host's side: MLflow tracking and step execution, one request at a time, run after run; in between, it
    loads ``preloads`` (what the steps import) one module at a time."""

    def __init__(self, preloads: Iterable[str] = (), keep_warm: bool = False) -> None:
        self.preloads = list(preloads)
        self.keep_warm = keep_warm  # for what any step may import next (a watch), not only the current run's steps
        self.loading = True  # until every one of preloads is in
        self.stores: dict[tuple[str, str, str], LocalTracking] = {}
        self.tracking: LocalTracking | None = None
        self.running: dict[int, tuple[str, str]] = {}  # pid -> (step, MLflow run id)
        self.processes: dict[int, subprocess.Popen] = {}  # pid -> the Popen of a step that is no Python script
        self.ended: list[dict[str, Any]] = []  # steps that ended, not yet reported by wait_step

    def open_store(self, tracking_uri: str, experiment: str, artifacts_dir: str) -> LocalTracking:
        key = (tracking_uri, experiment, artifacts_dir)
        if key not in self.stores:
            self.stores[key] = LocalTracking(tracking_uri, experiment, Path(artifacts_dir))
        return self.stores[key]

    def load_for_steps(self, folders: list[str]) -> None:
        """What the steps of the run about to start import, their code in ``folders``, loaded before anything else;
        what other steps import only if the host keeps warm for them."""
        first = [name for name in steps_imports(map(Path, folders)) if name not in sys.modules]
        rest = [name for name in self.preloads if name not in first] if self.keep_warm else []
        self.preloads = first + rest
        self.loading = self.loading or bool(self.preloads)

    def load_next(self) -> None:
        """Import the next module the steps import; after the last, warm MLflow and set it all apart from the
        collector."""
        if self.preloads:
            preload(self.preloads[:1])
            del self.preloads[0]
            return
        warm_mlflow()
        set_apart_from_collector()
        self.loading = False

    def load_for(self, argv: list[str], cwd: str) -> None:
        """What a Python step's scripts import, loaded before it starts (the other steps' imports load while it
        runs): in its child they would be loaded for it alone."""
        if not self.loading or not is_python_script(argv):
            return
        try:
            modules = script_imports([Path(cwd)], imported_names=True)
        except (SyntaxError, ValueError, OSError):  # the step itself reports what is wrong with its scripts
            return
        preload(modules)
        if any(name.split(".")[0] == "mlflow" for name in modules):
            warm_mlflow()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        action = request["action"]
        if action == "start_pipeline":
            self.tracking = self.open_store(request["tracking_uri"], request["experiment"], request["artifacts_dir"])
            return {"run_id": self.tracking.start_pipeline(request["run_name"], request["params"])}
        assert self.tracking is not None, "start_pipeline comes first"
        if action == "start_step":
            self.load_for(request["argv"], request["cwd"])
            run_id, env = self.tracking.start_step(request["step"])
            pid, process = start_command(request["argv"], request["cwd"], env, request["log"])
            self.running[pid] = (request["step"], run_id)
            if process:
                self.processes[pid] = process
            return {"run_id": run_id}
        if action == "preload":
            self.load_for_steps(request["folders"])
            return {}
        if action == "record_reused_step":
            self.tracking.record_reused_step(request["step"], request["earlier_run_id"])
            return {}
        if action == "end_pipeline":
            self.tracking.end_pipeline(request["status"])
            return {}
        raise ValueError(f"unknown request {action!r}")

    def reap(self) -> None:
        """Collect the steps that have exited: their MLflow runs end, and the next ``wait_step`` reports them."""
        while self.running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            self.collect(pid, os.waitstatus_to_exitcode(status))

    def collect(self, pid: int, returncode: int, stopped: bool = False) -> None:
        if pid not in self.running:
            return
        step, run_id = self.running.pop(pid)
        if process := self.processes.pop(pid, None):
            process.returncode = returncode  # reaped here: its Popen must not wait for the pid, reused by then
        assert self.tracking is not None  # a step runs only within a pipeline run
        self.tracking.end_step(run_id, "KILLED" if stopped else "FINISHED" if returncode == 0 else "FAILED")
        if not stopped:
            self.ended.append({"step": step, "returncode": returncode})

    def stop(self) -> list[str]:
        """Stop every running step: SIGTERM to its process group, SIGKILL after ``STOP_SECONDS``. Their MLflow runs
        and the pipeline's end as killed. Returns the steps stopped."""
        stopped = sorted(step for step, _ in self.running.values())
        signal_groups(self.running, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while self.running and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                self.collect(pid, -signal.SIGTERM, stopped=True)
            else:
                time.sleep(0.02)
        signal_groups(self.running, signal.SIGKILL)
        while self.running:
            self.collect(os.waitpid(-1, 0)[0], -signal.SIGKILL, stopped=True)
        if self.tracking:
            self.tracking.end_pipeline("killed")
        return stopped


def serve(requests: int, replies: IO[str], host: Host) -> None:
    """Answer the runner's requests, one JSON object per line, until SIGTERM or the end of its input.

    ``wait_step`` is answered when a step ends, and signals arrive as bytes on a wake-up pipe, so the host
    waits on its input, on signals and on its steps at once, never blocked in one of them.
    """
    wake_up, wake_up_writer = os.pipe()
    for descriptor in (wake_up, wake_up_writer):
        os.set_blocking(descriptor, False)
    signal.set_wakeup_fd(wake_up_writer)
    for signum in (signal.SIGCHLD, *STOPPING_SIGNALS):
        signal.signal(signum, lambda *_: None)  # the byte on the wake-up pipe is what counts
        signal.siginterrupt(signum, False)  # a library's system call in progress resumes rather than fails
    received, waiting = b"", False
    reply = functools.partial(send, replies)
    while True:
        ready = select.select([requests, wake_up], [], [], 0 if host.loading else None)[0]
        if not ready:  # nothing to answer: load more of what the steps import
            host.load_next()
            continue
        if wake_up in ready:
            signals = set(os.read(wake_up, 1024))
            if signals & set(STOPPING_SIGNALS):
                reply({"ok": False, "error": "interrupted", "stopped": host.stop()})
                return
            host.reap()  # a failure of the store here ends the host (main): the runner hears it in one line
        if requests in ready:
            chunk = os.read(requests, 1 << 16)
            if not chunk:  # the runner is gone: nothing may outlive it
                host.stop()
                return
            received += chunk
            while b"\n" in received:
                line, received = received.split(b"\n", 1)
                request = json.loads(line)
                if request["action"] == "wait_step":
                    waiting = True
                    continue
                try:
                    reply({"ok": True, **host.handle(request)})
                except Exception as error:  # sent back to the runner, which raises it
                    reply({"ok": False, "error": in_one_line(error)})
        if waiting and host.ended:
            reply({"ok": True, **host.ended.pop(0)})
            waiting = False
        elif waiting and not host.running:
            reply({"ok": False, "error": "ValueError: no step is running"})
            waiting = False


def send(replies: IO[str], message: dict[str, Any]) -> None:
    replies.write(json.dumps(message) + "\n")
    replies.flush()


def in_one_line(error: BaseException) -> str:
    """An error as the runner shows it: a ``StoreError`` as it is, any other with its type, its first line only."""
    return str(error) if isinstance(error, StoreError) else f"{type(error).__name__}: {first_line(error)}"


# --- the runner's side of the protocol -----------------------------------------------------------------------


class StepHostError(RuntimeError):
    """The step host died or refused a request."""


@dataclass(frozen=True)
class TrackingTarget:
    """The MLflow store and experiment a local run is tracked in."""

    uri: str
    experiment: str
    artifacts_dir: Path


class StepHost:
    """The runner's handle on the warm step host process (``main`` above); it serves run after run.

    The host runs in a session of its own, so a Ctrl-C in the terminal reaches only this process, which stops the
    host (and the host its steps) with ``interrupt()``. If this process dies, the host sees its input close and
    stops its steps too: nothing outlives the run.
    """

    def __init__(self, warm: TrackingTarget, step_folders: list[Path], keep_warm: bool = False) -> None:
        """A host that loads what the scripts in ``step_folders`` import, in their order, until each run names its
        steps to run: then what those import, and (``keep_warm``) the rest after them."""
        package_parent = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])),
            # `python` in a command run by a shell is this Python, as it is in a plain `python x.py` command.
            "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), os.environ.get("PATH")])),
            # Forked steps must not share the host's SQLite connections: open one per use.
            "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
        }
        argv = [sys.executable, "-m", __name__, warm.uri, warm.experiment, str(warm.artifacts_dir), str(keep_warm)]
        self.process = subprocess.Popen(
            [*argv, *map(str, step_folders)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.ready = False
        self.received = b""  # what the host sent beyond the last complete reply

    def request(self, action: str, **payload: Any) -> dict[str, Any]:
        if not self.ready:
            self._reply()
            self.ready = True
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps({"action": action, **payload}) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            raise StepHostError(f"the step host exited with code {self.process.wait()}") from None
        return self._reply()

    def _line(self, deadline: float | None = None) -> bytes | None:
        """The host's next line; None when it has closed its output (or ``deadline`` has passed)."""
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        while b"\n" not in self.received:
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not select.select([descriptor], [], [], timeout)[0]:
                return None
            chunk = os.read(descriptor, 1 << 16)
            if not chunk:
                return None
            self.received += chunk
        line, self.received = self.received.split(b"\n", 1)
        return line

    def _reply(self) -> dict[str, Any]:
        line = self._line()
        if line is None:
            raise StepHostError(f"the step host exited with code {self.process.wait()}; its errors are above")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise StepHostError(reply["error"])
        return reply

    def interrupt(self) -> list[str]:
        """Stop the host at once: it stops the steps it runs and ends their MLflow runs, and the pipeline's, as
        killed. Returns the steps it stopped."""
        stopped: list[str] = []
        deadline = time.monotonic() + HOST_STOP_SECONDS
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            while (line := self._line(deadline)) is not None:  # replies still on their way, then its last word
                stopped = json.loads(line).get("stopped", stopped)
        try:
            self.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return stopped

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait()


def main() -> None:
    """``python -m <package>.step_host TRACKING_URI EXPERIMENT ARTIFACTS_DIR KEEP_WARM STEP_FOLDER...``

    The tracking store named here is opened while warming up; each run names its own.
    """
    tracking_uri, experiment, artifacts_dir, keep_warm, *step_folders = sys.argv[1:]
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints while importing must not corrupt the reply channel
    gc.disable()  # imports make hundreds of thousands of lasting objects: scanning them as they come costs tenths
    host = Host(steps_imports(map(Path, step_folders)), keep_warm=keep_warm == "True")
    preload(["mlflow.tracking"])  # the runs' bookkeeping comes first, before any step can start
    # The store's set-up chatter on every run, and the tracebacks MLflow logs of its own failures: what fails reaches
    # the runner as its reply's one line.
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)
    try:
        host.open_store(tracking_uri, experiment, artifacts_dir)
        ready: dict[str, Any] = {"ok": True, "ready": True}
    except StoreError as error:
        ready = {"ok": False, "error": str(error)}
    try:
        send(replies, ready)
    except BrokenPipeError:  # the runner is gone (stopped while this host warmed up): nothing is left to do
        os._exit(0)
    if not ready["ok"]:
        os._exit(1)
    try:
        serve(sys.stdin.fileno(), replies, host)
    except StoreError as error:  # as a step ended: its steps stop, and the runner hears why in its next reply
        with contextlib.suppress(Exception):
            host.stop()
        with contextlib.suppress(BrokenPipeError):
            send(replies, {"ok": False, "error": str(error)})
        os._exit(1)
    # Everything is written and every step has exited: skip the seconds-long teardown of the imported modules.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
