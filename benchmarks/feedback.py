"""How long feedback takes, measured side by side in one run on this machine:

1. the fast tier (``make test-fast``) and the whole suite (``make test``), as CI runs them: each the engine's suite
   then the template's, each suite's time as pytest reports it, and their sum against the targets;
2. the default render's install into a fresh venv with a warm package cache: pip (``pip install -r
   requirements.lock``, then the project) against the render's own ``make install`` (uv). Each installer runs once
   untimed first, so that its cache holds everything;
3. the local pipeline run against one plain script: ``benchmarks/local_run.py --quick``, whose report is printed too.

Each command's wall clock and CPU seconds (user + system of every process it waited for) are printed: CPU seconds
tell how much work a command did whatever else the machine was doing at the time.

Usage::

    .venv/bin/python benchmarks/feedback.py                  # everything, about ten minutes on 2 cores
    .venv/bin/python benchmarks/feedback.py --skip suites    # installs and the local run only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from local_run import BenchmarkError, load_average, render, say, table, tail

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
PARTS = ("suites", "install", "local-run")
FAST_TIER_TARGET, FULL_SUITE_TARGET, INSTALL_TARGET = 60.0, 180.0, 30.0
# The suites `make test` and `make test-fast` run, in that order, and where each is.
SUITES = {"engine": "aml-pipeline-kit/tests", "template": "tests"}
# pytest's closing line, e.g. "===== 327 passed, 2 skipped in 152.06s (0:02:32) =====" ("=" left out with -q).
PYTEST_REPORT = re.compile(r"^=*\s*(\d+ (?:passed|failed|errors?)\b.*?) in ([\d.]+)s\b.*$", re.MULTILINE)


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(commands: list[list[str]], cwd: Path, log: Path) -> Timing:
    """Run ``commands`` one after another in ``cwd``, output to ``log``; raise on the first that fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("w") as output:
        for argv in commands:
            if subprocess.run(argv, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, check=False).returncode:
                raise BenchmarkError(f"failed: {' '.join(argv)} (cwd {cwd})\n{tail(log.read_text(errors='replace'))}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Timing(wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def suites(target: str, scratch: Path) -> tuple[Timing, dict[str, float]]:
    """``make target``'s wall and CPU time, and each suite's seconds as its pytest run reports them."""
    log = scratch / f"{target}.log"
    timing = timed([["make", target]], TEMPLATE_DIR, log)
    reports = PYTEST_REPORT.findall(log.read_text())
    if len(reports) != len(SUITES):
        raise BenchmarkError(f"make {target}: expected {len(SUITES)} pytest reports, found {len(reports)} in {log}")
    for name, (outcome, seconds) in zip(SUITES, reports, strict=True):
        say(f"  make {target}, the {name} suite: {outcome} in {seconds}s")
    say(f"  make {target}: {timing.wall:.1f}s wall, {timing.cpu:.1f}s CPU")
    return timing, {name: float(seconds) for name, (_, seconds) in zip(SUITES, reports, strict=True)}


def suite_rows(label: str, target: str, timing: Timing, each: dict[str, float], goal: float) -> list[list[str]]:
    """A row per suite (its pytest run's seconds), then ``make target``'s, against ``goal``."""
    pytest = "pytest -m 'not slow'" if target == "test-fast" else "pytest"
    per_suite = [
        [f"  the {name} suite", f"{pytest} {where}", seconds(each[name]), "", ""] for name, where in SUITES.items()
    ]
    return [*per_suite, [label, f"make {target}", *cells(timing), verdict(timing.wall, goal)]]


def base_python() -> str:
    """The interpreter the Makefiles create venvs with."""
    found = shutil.which("python3.11") or shutil.which("python3")
    if found is None:
        raise BenchmarkError("neither python3.11 nor python3 is on PATH")
    return found


def pip_install(project: Path) -> list[list[str]]:
    venv = project / ".venv-pip"
    pip = str(venv / "bin" / "pip")
    return [
        ["rm", "-rf", str(venv)],
        [base_python(), "-m", "venv", str(venv)],
        [pip, "install", "--quiet", "-r", "requirements.lock"],
        [pip, "install", "--quiet", "--no-deps", "-e", "."],
    ]


def make_install(project: Path) -> list[list[str]]:
    return [["rm", "-rf", str(project / ".venv")], ["make", "install"]]


def install(name: str, commands: list[list[str]], project: Path, scratch: Path) -> Timing:
    timed(commands, project, scratch / f"{name}-warm-up.log")
    timing = timed(commands, project, scratch / f"{name}.log")
    say(f"  install with {name}: {timing.wall:.1f}s wall, {timing.cpu:.1f}s CPU (cache warmed by an untimed run)")
    return timing


def local_run_summary(scratch: Path) -> list[dict]:
    summary = scratch / "local-run.json"
    script = Path(__file__).with_name("local_run.py")
    argv = [sys.executable, str(script), "--quick", "--summary-json", str(summary), "--workdir", str(scratch)]
    if subprocess.run(argv, check=False).returncode:
        raise BenchmarkError(f"failed: {' '.join(argv)}")
    return json.loads(summary.read_text())


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def cells(timing: Timing) -> list[str]:
    return [seconds(timing.wall), seconds(timing.cpu)]


def verdict(value: float, target: float) -> str:
    return f"<= {target:g}: {'yes' if value <= target else 'NO'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    skipped = {part for part in args.skip.split(",") if part}
    if skipped - set(PARTS):
        parser.error(f"unknown parts {sorted(skipped - set(PARTS))}; parts are {', '.join(PARTS)}")

    say(f"Feedback benchmark: {os.cpu_count()} CPUs, load average {load_average()} at start")
    rows: list[list[str]] = []
    scratch = Path(tempfile.mkdtemp(prefix="feedback-benchmark-"))
    try:
        if "suites" not in skipped:
            (fast, fast_each), (full, full_each) = suites("test-fast", scratch), suites("test", scratch)
            rows += [
                *suite_rows("fast tier, both suites", "test-fast", fast, fast_each, FAST_TIER_TARGET),
                *suite_rows("whole suite, both", "test", full, full_each, FULL_SUITE_TARGET),
            ]
        if "install" not in skipped:
            project = render(TEMPLATE_DIR, Path(sys.executable), scratch / "render")
            pip = install("pip", pip_install(project), project, scratch)
            uv = install("uv", make_install(project), project, scratch)
            rows += [
                ["render install, pip", "pip install -r requirements.lock", *cells(pip), "-"],
                ["render install, uv", "make install", *cells(uv), verdict(uv.wall, INSTALL_TARGET)],
                ["  pip / uv", "", f"{pip.wall / uv.wall:.1f}x", f"{pip.cpu / uv.cpu:.1f}x", ""],
            ]
        if "local-run" not in skipped:
            for result in local_run_summary(scratch):
                ratio = "-" if result["ratio"] is None else f"{result['ratio']:.2f}x"
                label = f"local run, {result['label']} {result['rows']:,} rows, {result['scenario']}"
                rows += [
                    [label, result["command"], seconds(result["local_seconds"]), "", ""],
                    ["  plain script", "plain_pipeline.py", seconds(result["plain_seconds"]), "", ""],
                    ["  local / plain", "", ratio, "", f"<= {result['target_ratio']:g}x"],
                ]
    except BenchmarkError as error:
        say(f"\nERROR: {error}\n(logs kept in {scratch})")
        return 1
    say(f"\n== Feedback, side by side (load average {load_average()} at the end) ==")
    say(table(["what", "command", "wall s", "CPU s", "target s"], rows))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
