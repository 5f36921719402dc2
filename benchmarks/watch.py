"""Time ``run --local --watch`` from a saved edit to the new metrics, beside the steps that edit makes run.

Renders the default project (``model=ridge``, as the peers benchmark does), starts ``run --local --watch`` in it and
lets its first run end, then ``--edits`` times appends a comment to ``components/evaluate/evaluate.py`` and notes
how long the watch takes from the save to printing the new metrics (the line that follows them). Beside each, from
that run's ``run.json``: the seconds of the edited step (evaluate) and of every step that ran (evaluate and
register), as the step host timed them. The ratio save -> metrics / edited step is what issue 23 targets (at most
1.5); the ratio to the steps that ran says how much of the rest is the watch's own (polling, check, the plan). Last,
for scale, the same edit run by a one-off ``run --local`` command, which starts its own step host.

Usage::

    python benchmarks/watch.py                 # 5 edits
    python benchmarks/watch.py --edits 10

Exits non-zero if rendering or a run fails, after printing the last lines of the watch's output.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from local_run import ENGINE, TEMPLATE_DIR, BenchmarkError, load_average, render, say, tail

EDITED = Path("components") / "evaluate" / "evaluate.py"
WATCHING = "watching "  # the line the watch prints once a run's tables are out
TIMEOUT = 600.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=5, help="saved edits timed; medians are printed")
    parser.add_argument("--template", type=Path, default=TEMPLATE_DIR, help="the cookiecutter template to render")
    return parser


class Watch:
    """``run --local --watch`` in ``project``, its output read line by line as it comes."""

    def __init__(self, project: Path) -> None:
        self.output: list[str] = []
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", ENGINE, "run", "--local", "--watch"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_run_done(self) -> float:
        """Wait for the end of the next run's output; the time it came (``time.perf_counter``)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise BenchmarkError(f"no run ended within {TIMEOUT:.0f}s:\n{tail(''.join(self.output))}") from None
            if line is None:
                raise BenchmarkError(f"the watch ended:\n{tail(''.join(self.output))}")
            self.output.append(line)
            if line.startswith("error:"):
                raise BenchmarkError(f"a run failed:\n{tail(''.join(self.output))}")
            if line.startswith(WATCHING):
                return time.perf_counter()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # as Ctrl-C: the watch stops its step host itself
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def latest_steps(project: Path) -> dict[str, float]:
    """The steps the newest run ran (reused ones left out), with the seconds the step host timed."""
    newest = max((project / "runs").glob("2*/run.json"), key=lambda path: path.parent.name)
    summary = json.loads(newest.read_text())
    return {step["name"]: step["seconds"] for step in summary["steps"] if step["status"] == "completed"}


def edit(project: Path, number: int) -> float:
    """Append a comment to the evaluate step's script; the time it was saved (``time.perf_counter``)."""
    with (project / EDITED).open("a") as script:
        script.write(f"# benchmark edit {number}\n")
    return time.perf_counter()


def one_off_run(project: Path, number: int) -> float:
    """The same edit, then a ``run --local`` command of its own: its wall clock."""
    started = edit(project, number)
    completed = subprocess.run(
        [sys.executable, "-m", ENGINE, "run", "--local"], cwd=project, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise BenchmarkError(f"run --local failed:\n{tail(completed.stdout + completed.stderr)}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.edits < 1:
        raise SystemExit("--edits must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="watch-benchmark-"))
    saved_to_metrics: list[float] = []
    edited_step: list[float] = []
    steps_run: list[float] = []
    try:
        project = render(args.template, Path(sys.executable), workdir, "model=ridge")
        say(f"{os.cpu_count()} CPUs, load avg {load_average()} at start (other work on this machine skews wall clocks)")
        watch = Watch(project)
        try:
            watch.next_run_done()  # the first run: every step
            for number in range(1, args.edits + 1):
                saved = edit(project, number)
                saved_to_metrics.append(watch.next_run_done() - saved)
                ran = latest_steps(project)
                if set(ran) != {"evaluate", "register"}:
                    raise BenchmarkError(f"edit {number} ran {sorted(ran)}, not evaluate and register")
                edited_step.append(ran["evaluate"])
                steps_run.append(sum(ran.values()))
                say(
                    f"  edit {number}: save -> metrics {saved_to_metrics[-1]:.2f}s; evaluate {edited_step[-1]:.2f}s, "
                    f"evaluate + register {steps_run[-1]:.2f}s"
                )
        finally:
            watch.stop()
        one_off = [one_off_run(project, args.edits + number) for number in range(1, 4)]
    except BenchmarkError as error:
        say(f"\nERROR: {error}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    to_metrics, step, run = (statistics.median(values) for values in (saved_to_metrics, edited_step, steps_run))
    command = statistics.median(one_off)
    say(f"\nmedians of {args.edits} edits of {EDITED} (load avg {load_average()} at the end):")
    say(f"  watch, save -> new metrics:         {to_metrics:6.2f}s")
    say(f"  the edited step (evaluate) alone:   {step:6.2f}s   ratio {to_metrics / step:.2f} (target <= 1.5)")
    say(f"  the steps that ran (+ register):    {run:6.2f}s   ratio {to_metrics / run:.2f}")
    say(f"  one-off run --local, same edit:     {command:6.2f}s   watch / one-off {to_metrics / command:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
