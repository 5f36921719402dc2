"""Benchmark batch scoring as a parallel job against one process, side by side in one run, on this machine.

Renders the template's default project (one ridge), trains its model once with ``run --local``, writes ``--rows``
synthetic rows without the target into ``--files`` CSV files of one folder, then scores that folder three ways, each
as a fresh subprocess under the same wrapper:

1. single process: the scoring step as it was before the parallel job, one process that reads every row, checks it,
   predicts all of it in one call and writes the predictions (score.py's ``init()`` then ``run()`` on one mini-batch
   of all the files);
2. the parallel job on 2 local workers (config.yml's ``max_concurrency_per_instance: 2``, ``mini_batch_size: "1"``:
   a file per mini-batch), run by the engine's local runner (``score_locally``), as ``make score`` runs it;
3. the same on 1 worker: the runner's own overhead per mini-batch over the single process.

For the parallel runs it reports the score step's own seconds (from run.json: the runner, its workers, every
mini-batch) and the whole command's wall clock (interpreter start-up, building the pipeline, the step host); the
ratios use the step's seconds, as the single process is the step alone. Peak memory is the largest single process
of each command (the wrapper's ``RUSAGE_CHILDREN``), workers included. Targets: 2 workers at most 0.6x the single
process's time and 0.25x its peak memory; 1 worker at most 5 % slower.

Usage::

    python benchmarks/parallel_scoring.py                     # --rows 5000000 --files 20
    python benchmarks/parallel_scoring.py --rows 200000 --files 4   # smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

from local_run import (
    MIB,
    PLAIN_SCRIPT_MODEL,
    RUN_COMPLETED,
    TEMPLATE_DIR,
    BenchmarkError,
    Measurement,
    Project,
    load_average,
    load_project,
    measure,
    render,
    say,
    synthetic_frame,
    table,
    tail,
)

ENGINE = "aml_pipeline_kit"
TARGETS = {"time_2": 0.6, "memory_2": 0.25, "overhead_1": 0.05}

# One process: the entry script's init() once, then run() on every file as one mini-batch.
SINGLE_PROCESS = """
import base64, json, sys
sys.path.insert(0, "components/score")
import score
model, folder, output = sys.argv[1:4]
score.init(["--model", model, "--id-column", base64.b64encode(b"null").decode(), "--predictions", output])
score.run(sorted(str(path) for path in __import__("pathlib").Path(folder).glob("*.csv")))
"""

# The parallel job as `make score` runs it, on a folder: the engine's score_locally, which prints its run's folder.
PARALLEL = """
import sys
from pathlib import Path
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.local_runs import score_locally
result = score_locally(Project.load(Path.cwd()), Path(sys.argv[1]), Path(sys.argv[2]))
print(f"run {result.run_id} completed: {result.run_dir}")
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows to score in all (default: %(default)s)")
    parser.add_argument("--files", type=int, default=20, help="files they are split into (default: %(default)s)")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="interpreter of the commands")
    parser.add_argument("--template", type=Path, default=TEMPLATE_DIR, help="the cookiecutter template to render")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a single command is killed")
    return parser


def write_files(project: Project, rows: int, files: int, seed: int, folder: Path) -> int:
    """``rows`` synthetic rows without the target in ``files`` CSV files; their total size in bytes."""
    folder.mkdir(parents=True)
    for number in range(files):
        share = rows // files + (1 if number < rows % files else 0)
        frame = synthetic_frame(share, seed + number).drop(columns=[project.target])
        frame.to_csv(folder / f"part-{number:03d}.csv", index=False)
    return sum(path.stat().st_size for path in folder.iterdir())


def set_workers(project: Project, workers: int) -> None:
    """config.yml's scoring.parallel: ``workers`` on one node, a file per mini-batch."""
    config = project.path / "config.yml"
    text = re.sub(r"max_concurrency_per_instance: \d+", f"max_concurrency_per_instance: {workers}", config.read_text())
    config.write_text(re.sub(r"mini_batch_size: \S+", 'mini_batch_size: "1"', text))


def step_seconds(measurement: Measurement) -> float:
    completed = RUN_COMPLETED.search(measurement.output)
    if completed is None:
        raise BenchmarkError(f"the parallel scoring printed no 'run ... completed' line:\n{tail(measurement.output)}")
    summary = json.loads((Path(completed[2].strip()) / "run.json").read_text())
    (step,) = summary["steps"]
    return float(step["seconds"])


def scored_rows(folder: Path) -> int:
    return sum(sum(1 for _ in path.open()) - 1 for path in folder.glob("*.csv"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.python = args.python.absolute()
    workdir = Path(tempfile.mkdtemp(prefix="parallel-scoring-benchmark-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ["src", os.environ.get("PYTHONPATH")]))}
    rows_table: list[list[str]] = []
    figures: dict[str, tuple[float, int]] = {}
    failed = False
    try:
        say(f"Scoring {args.rows:,} rows in {args.files} files: a parallel job vs one process, on this machine")
        say(f"  python:   {args.python}, {os.cpu_count()} CPUs, {platform.platform()}")
        say(f"  load avg: {load_average()} at start (other work on this machine skews the figures)")
        project = load_project(render(args.template, args.python, workdir / "render", PLAIN_SCRIPT_MODEL))
        trained = measure([str(args.python), "-m", ENGINE, "run", "--local"], project.path, env, args.python, 1800)
        model = next(project.path.glob("runs/*/train/model"))
        say(f"  trained:  `run --local` in {trained.seconds:.1f}s; model {model}")
        folder = workdir / "rows"
        size = write_files(project, args.rows, args.files, args.seed, folder)
        say(f"  rows:     {size / MIB:.0f} MiB of CSV in {folder}")

        output = workdir / "single-process-predictions"
        single_argv = [str(args.python), "-c", SINGLE_PROCESS, str(model), str(folder), str(output)]
        single = measure(single_argv, project.path, env, args.python, args.timeout)
        if scored_rows(output) != args.rows:
            raise BenchmarkError(f"the single process wrote {scored_rows(output)} predictions for {args.rows} rows")
        figures["single"] = (single.seconds, single.max_rss_bytes)
        rows_table.append(["single process", "1", f"{single.seconds:.1f}", f"{single.seconds:.1f}", *peak(single)])
        for workers in (2, 1):
            set_workers(project, workers)
            parallel_argv = [str(args.python), "-c", PARALLEL, str(model), str(folder)]
            run = measure(parallel_argv, project.path, env, args.python, args.timeout)
            step = step_seconds(run)
            figures[f"parallel_{workers}"] = (step, run.max_rss_bytes)
            rows_table.append(["parallel job", str(workers), f"{step:.1f}", f"{run.seconds:.1f}", *peak(run)])
            say(f"  scored:   parallel job on {workers} worker(s)")
    except BenchmarkError as error:
        say(f"\nERROR: {error}")
        failed = True
    finally:
        say(f"\n== Scoring {args.rows:,} rows in {args.files} CSV files ==")
        say("(step s: the scoring's own seconds; command s: the whole command; peak: the largest single process)")
        say(table(["how", "workers", "step s", "command s", "peak MiB"], rows_table))
        report_ratios(figures)
        say(f"\nload avg: {load_average()} at the end")
        if failed:
            say(f"kept {workdir} (step logs: render/<project>/runs/<run id>/score/step.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def peak(measurement: Measurement) -> list[str]:
    return [f"{measurement.max_rss_bytes / MIB:.0f}"]


def report_ratios(figures: dict[str, tuple[float, int]]) -> None:
    if "single" not in figures:
        return
    seconds, memory = figures["single"]
    if "parallel_2" in figures:
        time_2, memory_2 = figures["parallel_2"][0] / seconds, figures["parallel_2"][1] / memory
        say(f"2 workers / single process: time {time_2:.2f}x (target <= {TARGETS['time_2']}x, {met(time_2, 'time_2')})")
        say(
            f"2 workers / single process: peak memory {memory_2:.2f}x (target <= {TARGETS['memory_2']}x, "
            f"{met(memory_2, 'memory_2')})"
        )
    if "parallel_1" in figures:
        overhead = figures["parallel_1"][0] / seconds - 1
        say(
            f"1 worker over single process: {overhead:+.1%} (target <= +{TARGETS['overhead_1']:.0%}, "
            f"{met(overhead, 'overhead_1')})"
        )


def met(value: float, target: str) -> str:
    return "met" if value <= TARGETS[target] else "NOT met"


if __name__ == "__main__":
    sys.exit(main())
