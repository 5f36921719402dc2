"""model=auto (the default) against plain ridge: does choosing the model cost accuracy?

Renders a project per data set (the default one for the shipped sample) and runs its pipeline locally twice on
the same data and split, side by side in one invocation: ``run --local -p model_type=ridge`` (ridge trained on the
whole train split) and ``-p model_type=auto`` (every regressor trained on the train split less the validation rows,
the best on those refitted on the whole train split). Prints each one's test RMSE (the evaluate step's, on the
untouched test split), what auto selected, and the ratio auto / ridge: at most 1.00 means auto loses nothing. The
shipped diabetes sample first; with ``--friedman ROWS``, also Friedman's nonlinear regression problem #1
(scikit-learn's ``make_friedman1``, generated here and rendered as a user's own CSV), where a linear model is poor.

    .venv/bin/python benchmarks/model_choice.py [--friedman 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from local_run import ENGINE, TEMPLATE_DIR, render
from sklearn.datasets import make_friedman1

PYTHON = Path(sys.executable)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--friedman", type=int, default=0, help="rows of Friedman #1 data to add (0: skip)")
    return parser


def test_result(project: Path, *parameters: str) -> tuple[float, str]:
    """``run --local --no-reuse`` with these ``-p`` parameters: the test RMSE, and the model it trained."""
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    command = [sys.executable, "-m", ENGINE, "run", "--local", "--no-reuse", *parameters]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    report = Path(re.search(r"^report: (.+)$", done.stdout, re.MULTILINE)[1])
    selection = report.parent.parent / "select" / "selection" / "selection.json"
    model = json.loads(selection.read_text())["winner"] if selection.is_file() else "ridge"
    return json.loads((report / "metrics.json").read_text())["rmse"], model


def friedman_csv(rows: int, path: Path) -> Path:
    features, target = make_friedman1(n_samples=rows, n_features=8, noise=1.0, random_state=0)
    frame = pd.DataFrame(features, columns=[f"x{number}" for number in range(features.shape[1])])
    frame.assign(y=target).to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="model-choice-") as scratch:
        default = render(TEMPLATE_DIR, PYTHON, Path(scratch) / "diabetes")
        projects = {f"diabetes sample ({len(pd.read_csv(default / 'data' / 'diabetes.csv'))} rows)": default}
        if args.friedman:
            csv = friedman_csv(args.friedman, Path(scratch) / "friedman.csv")
            friedman = render(TEMPLATE_DIR, PYTHON, Path(scratch) / "friedman", f"data_path={csv}", "target_column=y")
            projects[f"Friedman #1 ({args.friedman:,} rows)"] = friedman
        print(f"{'data':<30}{'ridge RMSE':>12}{'auto RMSE':>11}  {'auto chose':<24}{'auto / ridge':>12}")
        for label, project in projects.items():
            try:
                ridge, _ = test_result(project, "-p", "model_type=ridge")
                auto, chosen = test_result(project, "-p", "model_type=auto")
            except RuntimeError as error:
                print(f"FAILED: {error}", file=sys.stderr)
                return 1
            print(f"{label:<30}{ridge:>12.3f}{auto:>11.3f}  {chosen:<24}{auto / ridge:>12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
