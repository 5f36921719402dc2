"""``run --local --watch``: the training pipeline run again each time a file it reads is saved, on one step host kept
warm from run to run, until Ctrl-C.

Watched: config.yml and pyproject.toml, every file under components/, aml/ and src/, and the data file aml/data.yml
names (which may lie outside the project). They are polled, their modification times and sizes twenty times a
second (a few dozen ``stat`` calls): the standard library only, on any file system, where an OS's file events need a
dependency and miss changes on network and container mounts. A change starts a run once the files have stayed as they
are for one more poll, as an editor may write a file in steps. Each run reuses what did not change, so only the steps
that read what changed run, in a host that has every step's imports loaded. A run that cannot start or fails (a
finding of ``check``, a setting, a failing step) is said in one line, and the watch goes on; the project's own
modules (src/) are imported anew for each run.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from .check import CheckFailed
from .config_files import SettingsError
from .local_runner import StepFailed
from .local_runs import (
    FORESEEN_ERRORS,
    failed,
    foreseen_error_line,
    run_pipeline_locally,
    show_training,
    start_step_host,
)
from .plan_cache import IGNORED_PARTS
from .project import Project
from .step_host import StepHost

POLL_SECONDS = 0.05
WATCHED_FOLDERS = ("components", "aml", "src")
WATCHED_FILES = ("config.yml", "pyproject.toml")
SHOWN_CHANGES = 3

Signatures = dict[Path, tuple[int, int]]  # a watched file -> its modification time (ns) and size


def watched_files(root: Path, data: Path | None) -> list[Path]:
    """The files a run of the project at ``root`` reads: its settings, components, specs, package and ``data``."""
    files = [root / name for name in WATCHED_FILES]
    for folder in WATCHED_FOLDERS:
        for directory, subfolders, names in os.walk(root / folder):
            subfolders[:] = sorted(name for name in subfolders if name not in IGNORED_PARTS)
            files += [Path(directory, name) for name in sorted(names) if not name.endswith(".pyc")]
    return [*files, data] if data else files


def signatures(files: list[Path]) -> Signatures:
    found: Signatures = {}
    for path in files:
        try:
            status = path.stat()
        except OSError:  # gone, or being replaced: absent until it is back
            continue
        found[path] = (status.st_mtime_ns, status.st_size)
    return found


def changed(before: Signatures, after: Signatures) -> list[Path]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def wait_for_change(root: Path, data: Path | None, before: Signatures) -> list[Path]:
    """The files that changed since ``before``, once they have stayed as they are for one more poll."""
    while True:
        time.sleep(POLL_SECONDS)
        now = signatures(watched_files(root, data))
        if not changed(before, now):
            continue
        while (settled := signatures(watched_files(root, data))) != now:
            now = settled
            time.sleep(POLL_SECONDS)
        return changed(before, now)


def forget_project_modules(root: Path) -> None:
    """The project's own modules (src/) out of ``sys.modules``: the next run imports them as they are now."""
    source = root / "src"
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).is_relative_to(source):
            del sys.modules[name]


def loaded(root: Path) -> Project | None:
    """The project as it is now, its own modules imported anew; None if its settings are wrong, said in one line."""
    forget_project_modules(root)
    try:
        return Project.load(root)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def run_once(
    project: Project, overrides: dict[str, Any], reuse: bool, max_parallel: int | None, host: StepHost
) -> None:
    """One run of the watch: its tables, or what stopped it in one line."""
    try:
        result = run_pipeline_locally(project, overrides, reuse, check=True, host=host, max_parallel=max_parallel)
    except StepFailed as failure:
        failed(failure)
    except CheckFailed as failure:
        findings = failure.report.text().splitlines()[:-1]
        more = f" (and {len(findings) - 1} more: `aml-pipeline-kit check` lists them)" if len(findings) > 1 else ""
        print(f"error: not started, check found: {findings[0]}{more}", file=sys.stderr)
    except (*FORESEEN_ERRORS, OSError) as error:
        print(foreseen_error_line(error), file=sys.stderr)
    else:
        show_training(project, result)


def shown(files: list[Path], root: Path) -> str:
    names = [path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path) for path in files]
    return ", ".join(names[:SHOWN_CHANGES]) + (" ..." if len(names) > SHOWN_CHANGES else "")


def watch_local(root: Path, overrides: dict[str, Any], reuse: bool, max_parallel: int | None = None) -> int:
    """Run, then run again on every change, until SIGINT or SIGTERM (``Interrupted``): the host stops with its steps."""
    host: StepHost | None = None
    data: Path | None = None
    try:
        while True:
            project = loaded(root)
            data = project.local_data_path if project else data
            before = signatures(watched_files(root, data))  # a file saved while the run reads it counts as changed
            if project:
                if host is None or host.process.poll() is not None:  # the first, or one that died (its store failed)
                    host = start_step_host(project, keep_warm=True)
                run_once(project, overrides, reuse, max_parallel, host)
            print(f"\nwatching {len(before)} files for changes (Ctrl-C ends)", flush=True)
            files = wait_for_change(root, data, before)
            print(f"\nchanged: {shown(files, root)}", flush=True)
    except BaseException:
        if host:
            host.interrupt()  # whether a run had started or not, nothing may outlive the command
        raise
    finally:
        if host:
            host.close()
