"""How the step host starts a step's command line and stops it: ``python <script>.py`` in a forked child that behaves
as a fresh interpreter, anything else as a subprocess; each step in a process group of its own, signalled as one."""

from __future__ import annotations

import contextlib
import gc
import os
import runpy
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterable


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
            as_a_fresh_process()
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
    own_group(pid)
    return pid


def as_a_fresh_process() -> None:
    """In a forked step: a process group of its own (stopped as a whole), the signal handling of a new
    interpreter, not the host's, and its garbage collector on (the host's is off while it loads), with what it
    inherited set apart from it as the host sets it once loaded."""
    os.setpgid(0, 0)
    set_apart_from_collector()
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def own_group(pid: int) -> None:
    """Put a new child in its own process group from the parent's side too: whichever runs first wins the race."""
    with contextlib.suppress(PermissionError, ProcessLookupError):  # the child did it already, or has exited
        os.setpgid(pid, pid)


def start_command(argv: list[str], cwd: str, env: dict[str, str], log: str) -> tuple[int, subprocess.Popen | None]:
    """Start a step's command line without waiting for it; returns its pid, and its ``Popen`` if it has one: kept
    until the host reaps it, as a ``Popen`` dropped earlier reaps its process itself, which the host then misses."""
    if is_python_script(argv):
        return start_script_in_child(argv, cwd, env, log), None
    with open(log, "w") as handle:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, process_group=0)
    return process.pid, process


def set_apart_from_collector() -> None:
    """What is loaded now lives as long as the process: set apart from the collector, so that no forked step's
    collections walk it (tenths of a second per step, and writes that unshare the parent's memory pages)."""
    gc.freeze()
    gc.enable()


def signal_groups(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # the step has exited already
            os.killpg(pid, signum)
