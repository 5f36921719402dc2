"""Time the rendered project's ``check`` command against its target: 3 seconds, azure-ai-ml's import included.

Renders the template's default project into a temporary folder and runs ``python -m aml_pipeline_kit check`` there once
untimed (that run compiles the project's bytecode, as a user's first check does). Then, ``--repeat`` times, it
runs the check and a bare import of azure-ai-ml one after the other, each a fresh subprocess, and prints the
medians: the check's against the target, the import's as the floor of any check that loads the specs with
azure-ai-ml. The import runs with the check's garbage-collector settings (paused while importing, no final
collection at exit), so the difference is the check's own work. Alternating the two exposes both to the same load
from other work on the machine.

Usage::

    python benchmarks/check.py               # 7 runs of each
    python benchmarks/check.py --repeat 15 --strict

Exits non-zero if rendering or a check fails, and with ``--strict`` also if the median misses the target.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from local_run import ENGINE, TEMPLATE_DIR, BenchmarkError, load_average, measure, render, say

TARGET_SECONDS = 3.0
IMPORT_ONLY = "import gc; gc.disable(); import azure.ai.ml; gc.freeze()"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each command; the median counts")
    parser.add_argument("--target", type=float, default=TARGET_SECONDS, help="seconds the median must not exceed")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the median misses the target")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="interpreter of the commands")
    parser.add_argument("--template", type=Path, default=TEMPLATE_DIR, help="the cookiecutter template to render")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a single command is killed")
    return parser


def spread(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds):.2f}s (min {min(seconds):.2f}, max {max(seconds):.2f})"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    python = args.python.absolute()
    workdir = Path(tempfile.mkdtemp(prefix="check-benchmark-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ["src", os.environ.get("PYTHONPATH")]))}
    checks: list[float] = []
    imports: list[float] = []
    try:
        project = render(args.template, python, workdir)
        check = [str(python), "-m", ENGINE, "check"]
        import_only = [str(python), "-c", IMPORT_ONLY]
        say(f"`python {' '.join(check[1:])}` in the default render, {project.name}")
        say(f"  python:   {python}, {os.cpu_count()} CPUs, {platform.platform()}")
        say(f"  load avg: {load_average()} at start (other work on this machine skews the figures)")
        first = measure(check, project, env, python, args.timeout)
        say(f"  untimed first check: {first.seconds:.2f}s; it printed: {first.output.strip().splitlines()[-1]}")
        for number in range(1, args.repeat + 1):
            checks.append(measure(check, project, env, python, args.timeout).seconds)
            imports.append(measure(import_only, project, env, python, args.timeout).seconds)
            say(f"  run {number}/{args.repeat}: check {checks[-1]:5.2f}s, import azure.ai.ml {imports[-1]:5.2f}s")
    except BenchmarkError as error:
        say(f"\nERROR: {error}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    median = statistics.median(checks)
    verdict = "meets" if median <= args.target else "does NOT meet"
    say(f"\ncheck:              {spread(checks)} of {args.repeat} runs: {verdict} the {args.target:g}s target")
    say(f"import azure.ai.ml: {spread(imports)}; the check's own work: {median - statistics.median(imports):.2f}s")
    say(f"load avg: {load_average()} at the end")
    return 1 if args.strict and median > args.target else 0


if __name__ == "__main__":
    sys.exit(main())
