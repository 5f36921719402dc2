"""model=auto: the candidates trained side by side (one step per core) against one after another.

Renders the template with model=auto, runs `run --local --no-reuse` with `--max-parallel 1`
and with the default (one step per CPU core) alternately, on the shipped diabetes CSV and on
synthetic rows of its schema, and prints the medians and their ratio.

    .venv/bin/python benchmarks/auto.py [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from local_run import ENGINE, TEMPLATE_DIR, BenchmarkError, measure, render, synthetic_frame


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic rows for the second data set (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode per data set; the median is shown")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one run may take")
    return parser


def timings(project: Path, repeat: int, timeout: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    command = [sys.executable, "-m", ENGINE, "run", "--local", "--no-reuse"]
    measure(command, project, env, Path(sys.executable), timeout)  # creates the MLflow store: not counted
    modes = {"one after another": ["--max-parallel", "1"], f"side by side ({os.cpu_count()} cores)": []}
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(repeat):
        for mode, flags in modes.items():
            seconds[mode].append(measure([*command, *flags], project, env, Path(sys.executable), timeout).seconds)
    return {mode: statistics.median(values) for mode, values in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="auto-benchmark-") as scratch:
        project = render(TEMPLATE_DIR, Path(sys.executable), Path(scratch), "model=auto")
        data = project / "data" / "diabetes.csv"
        datasets = {"shipped (632 rows)": None}
        if args.rows:
            datasets[f"synthetic ({args.rows:,} rows)"] = args.rows
        print(f"model=auto: {', '.join(['ridge', 'random_forest', 'hist_gradient_boosting'])}; median of {args.repeat}")
        print(f"{'data':<28}{'one after another':>20}{'side by side':>15}{'ratio':>8}")
        for label, rows in datasets.items():
            if rows:
                synthetic_frame(rows, seed=7).to_csv(data, index=False)
            try:
                result = timings(project, args.repeat, args.timeout)
            except BenchmarkError as error:
                print(f"FAILED: {error}", file=sys.stderr)
                return 1
            sequential, parallel = result.values()
            print(f"{label:<28}{sequential:>19.2f}s{parallel:>14.2f}s{sequential / parallel:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
