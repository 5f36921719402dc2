"""``run --local --watch``: one command that runs the training pipeline again each time a file it reads is saved, and
leaves no process behind when Ctrl-C ends it. One watch of a copy of the example (one model type: four steps), its
output read as it comes."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from projects import cli, copy_example, no_step_host_left, start_cli

RUN_SECONDS = 300  # a generous bound on one run of the example's four steps on a busy machine: a hang, not a speed


class Watch:
    """The watch command, every line it prints kept as it comes (a thread reads them: the test never blocks)."""

    def __init__(self, project: Path) -> None:
        self.process = start_cli(project, "run", "--local", "--watch", "-p", "model_type=ridge")
        self.lines: list[str] = []
        threading.Thread(target=self.lines.extend, args=(self.process.stdout,), daemon=True).start()

    def output_after(self, seen: int, line: str) -> list[str]:
        """The lines printed after the first ``seen`` once one of them starts with ``line``."""
        deadline = time.monotonic() + RUN_SECONDS
        while not any(printed.startswith(line) for printed in self.lines[seen:]):
            assert self.process.poll() is None, "".join(self.lines) + self.process.stderr.read()
            assert time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.05)
        return self.lines[seen:]


@pytest.mark.slow  # runs the pipeline
def test_a_watch_runs_what_an_edit_affects_and_ctrl_c_leaves_no_process(tmp_path: Path, empty_store: Path) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    watch = Watch(project)
    try:
        first = watch.output_after(0, "watching")
        assert "RMSE" in "".join(first), "".join(first)

        with (project / "components" / "evaluate" / "evaluate.py").open("a") as script:
            script.write("# edited\n")
        again = "".join(watch.output_after(len(first), "watching"))
        assert "changed: components/evaluate/evaluate.py" in again
        for reused in ("data_prep", "train"):
            assert f"{reused}: reused outputs of run" in again, again
        for ran in ("evaluate", "register"):
            assert f"{ran}: done in" in again, again
        assert "RMSE" in again  # the new metrics

        watch.process.send_signal(signal.SIGINT)
        assert watch.process.wait(timeout=30) == 130
        assert watch.process.stderr.read().splitlines()[-1] == "interrupted by SIGINT"
        assert no_step_host_left(project)
    finally:
        if watch.process.poll() is None:
            watch.process.kill()
        watch.process.wait()


def test_watch_is_for_a_local_run_of_a_project(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "project")
    for arguments, refusal in [
        (["--azure", "--watch"], "error: --watch runs the pipeline on this machine: use it with --local"),
        (["--local", "--watch", "--job", "job.yml"], "error: --watch watches a project's files: run it in a "),
    ]:
        refused = cli(project, "run", *arguments)
        assert refused.returncode == 2 and refused.stderr.startswith(refusal), refused.stderr
