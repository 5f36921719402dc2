"""Time a render on a big CSV: the pre-gen hook reads every row to type the columns (the whole file decides).

Writes a synthetic CSV of the default schema (``local_run.synthetic_frame``) and renders the template on it with
``--repeat`` fresh cookiecutter runs, printing each wall-clock time and the median. Rendering the shipped sample
costs about a second of it: the rest is the hook's reading of the CSV.

Usage::

    python benchmarks/render.py                     # 1,000,000 rows, 3 renders
    python benchmarks/render.py --rows 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from check import spread
from local_run import TEMPLATE_DIR, BenchmarkError, load_average, render, say, synthetic_frame


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic CSV")
    parser.add_argument("--repeat", type=int, default=3, help="timed renders; the median counts")
    parser.add_argument("--template", type=Path, default=TEMPLATE_DIR, help="the cookiecutter template to render")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="render-benchmark-"))
    seconds: list[float] = []
    try:
        data = workdir / "patients.csv"
        frame = synthetic_frame(args.rows, seed=7)
        frame.to_csv(data, index=False)
        say(f"render of a {args.rows:,}-row, {len(frame.columns)}-column CSV ({data.stat().st_size / 1e6:.0f} MB)")
        say(f"  {os.cpu_count()} CPUs, load avg {load_average()} at start (other work on this machine skews it)")
        for number in range(1, args.repeat + 1):
            started = time.perf_counter()
            render(args.template, Path(sys.executable), workdir / f"render-{number}", f"data_path={data}")
            seconds.append(time.perf_counter() - started)
            say(f"  render {number}/{args.repeat}: {seconds[-1]:.2f}s")
    except BenchmarkError as error:
        say(f"\nERROR: {error}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    say(f"render: {spread(seconds)} of {args.repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
