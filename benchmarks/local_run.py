"""Benchmark the rendered project's local pipeline run against the same work done by one plain Python script.

Renders the template's default project, then, on the same machine and in one invocation, times local runs
against a single plain script that reads the CSV, drops rows with an empty target, makes the same split, fits the
same preprocessing + Ridge pipeline and scores RMSE/MAE/R2 (both run as fresh subprocesses, so interpreter start-up
and imports count for both; each local run is followed by a plain one, so both see the same load):

1. on the shipped ``data/diabetes.csv``, three ways a user runs the pipeline:
   - cold: ``run --local`` with nothing kept from earlier runs (runs/ removed: no plan cache, no reusable step;
     the MLflow store stays, as it does once a project has run);
   - edit one step: ``run --local`` after an edit of the train step's script (a comment appended), so data_prep is
     reused and train, evaluate and register run; the plan and check's verdict come from the plan cache;
   - no reuse: ``run --local --no-reuse`` with the plan cache warm: every step runs;
2. with ``--sizes``, ``run --local --no-reuse`` on synthetic data of the default schema at those sizes;
3. the imports floor: one Python that only imports what the run's step scripts import (``import x`` and
   ``from x import y`` alike). Any run that starts its processes afresh, as issue 11 requires (nothing outlives
   the command), pays at least that once, so floor / plain bounds the ratio a local run can reach.

Every command runs under a small wrapper process that reports the wall clock of the command, the CPU time (user +
system) of every process it started, and the peak resident memory (max RSS) of the largest one, read from the
wrapper's own ``RUSAGE_CHILDREN``: that covers every child ever waited for (the step host and its steps too), so each
measurement needs its own fresh wrapper. On a machine busy with other work the wall clock swings with the load; the
CPU time hardly does, so its ratio shows what a change did when the wall clock cannot.

Usage::

    python benchmarks/local_run.py                                # shipped data, --repeat 3 (median reported)
    python benchmarks/local_run.py --sizes 10000,1000000          # and synthetic data of those sizes
    python benchmarks/local_run.py --quick                        # smoke check: one repetition, and 10000 rows

Exits non-zero if rendering or any run fails, after printing the last lines of the failing command's output.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
DATA_FILE = Path("data") / "diabetes.csv"
COLD_TARGET, EDIT_TARGET, SIZE_TARGET = 3.0, 2.0, 2.0  # local / plain, as issue 12 asks
EDITED_SCRIPT = Path("components") / "train" / "train.py"
PLAIN_SCRIPT_MODEL = "model=ridge"  # the render the plain script does the same work as: one ridge, no selection
ENGINE = "aml_pipeline_kit"  # `python -m`: the engine's command line, run in the project's folder as `make run` runs it
FAILURE_TAIL_LINES = 20
MIB = 1024 * 1024

# Runs one command and writes {"returncode", "seconds", "cpu_seconds", "max_rss_bytes"} to the file named by its
# first argument. RUSAGE_CHILDREN of this process covers exactly the one command it waits for (and everything that
# command waited for in turn); ru_maxrss is the largest single process among them, in KiB on Linux and bytes on macOS.
WRAPPER = """
import json, resource, subprocess, sys, time
result_path, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
returncode = subprocess.call(argv)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
max_rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
cpu = usage.ru_utime + usage.ru_stime
with open(result_path, "w") as handle:
    json.dump({"returncode": returncode, "seconds": seconds, "cpu_seconds": cpu, "max_rss_bytes": max_rss}, handle)
"""

# The local run's work in one process; written next to the projects and run as its own subprocess.
PLAIN_SCRIPT = '''\
"""The work of the local pipeline run in one process: read, clean, split, fit, score. Prints the metrics as JSON."""

import argparse
import contextlib
import hashlib
import json

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def scores(actual, predicted, prefix):
    return {
        f"{prefix}rmse": float(mean_squared_error(actual, predicted) ** 0.5),
        f"{prefix}mae": float(mean_absolute_error(actual, predicted)),
        f"{prefix}r2": float(r2_score(actual, predicted)),
    }


def usable(values, rows):
    """As data_prep: no constant columns, no row identifiers."""
    distinct = values.nunique(dropna=True)
    if distinct <= 1:
        return False
    if distinct == rows:
        if pd.api.types.is_integer_dtype(values):
            return int(values.max()) - int(values.min()) + 1 != rows
        return pd.api.types.is_numeric_dtype(values)
    return True


parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--target", required=True)
parser.add_argument("--test-size", type=float, required=True)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--alpha", type=float, required=True)
args = parser.parse_args()

frame = pd.read_csv(args.data)
frame[args.target] = pd.to_numeric(frame[args.target], errors="coerce")
frame = frame.dropna(subset=[args.target])
features = [name for name in frame.columns if name != args.target and usable(frame[name], len(frame))]
numeric = [name for name in features if pd.api.types.is_numeric_dtype(frame[name])]
categorical = [name for name in features if name not in numeric]
test = frame.sample(frac=args.test_size, random_state=args.seed)
train = frame.drop(index=test.index)

preprocess = ColumnTransformer(
    [
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (
            "categorical",
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=30, sparse_output=False),
            ),
            categorical,
        ),
    ]
)
model = Pipeline([("preprocess", preprocess), ("regressor", Ridge(alpha=args.alpha))])
model.fit(train[numeric + categorical], train[args.target])
predicted = model.predict(test[numeric + categorical])
baseline = np.full(len(test), train[args.target].mean())
metrics = {
    **scores(test[args.target], predicted, ""),
    **scores(test[args.target], baseline, "baseline_"),
    "n_train_rows": len(train),
    "n_test_rows": len(test),
}
print(json.dumps(metrics))
'''

# What the step scripts in the folders given as arguments import, imported once (their own modules fail and are
# skipped; azure-ai-ml is imported by a component's definition, component.py, never by its step): the least any
# local run of them pays, however its runner works.
IMPORTS_FLOOR = """
import ast, importlib, sys
from pathlib import Path
for folder in sys.argv[1:]:
    for script in sorted(Path(folder).glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "azure":
                    continue
                parent, _, attribute = name.rpartition(".")
                if parent in sys.modules and hasattr(sys.modules[parent], attribute):
                    continue
                try:
                    importlib.import_module(name)
                except Exception:
                    pass
"""

RUN_COMPLETED = re.compile(r"^run (\S+) completed: (.+)$", re.MULTILINE)
COMPARED_METRICS = ("rmse", "mae", "r2")
METRICS_TOLERANCE = 1e-6


class BenchmarkError(RuntimeError):
    """Rendering or a measured command failed; the message carries the command and its last output lines."""


@dataclass
class Measurement:
    seconds: float
    cpu_seconds: float
    max_rss_bytes: int
    output: str
    metrics: dict[str, float] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Scenario:
    """One way of running the pipeline: ``run --local`` with ``options``, after ``prepare(project, number)``."""

    label: str
    options: tuple[str, ...]
    target_ratio: float
    prepare: Callable[[Path, int], None]

    @property
    def command(self) -> str:
        return shlex.join(["run", "--local", *self.options])


def nothing_kept(project: Path, number: int) -> None:
    """Cold: no plan cache, no reuse index, no earlier run (the MLflow store stays)."""
    shutil.rmtree(project / "runs", ignore_errors=True)


def train_script_edited(project: Path, number: int) -> None:
    """One step's script edited: a comment appended, a new one each time."""
    with (project / EDITED_SCRIPT).open("a") as script:
        script.write(f"# benchmark edit {number}\n")


def unchanged(project: Path, number: int) -> None:
    return None


SHIPPED_SCENARIOS = (
    Scenario("cold", (), COLD_TARGET, nothing_kept),
    Scenario("edit one step", (), EDIT_TARGET, train_script_edited),
    Scenario("no reuse", ("--no-reuse",), SIZE_TARGET, unchanged),
)
SIZE_SCENARIO = SHIPPED_SCENARIOS[-1]


@dataclass
class Result:
    label: str
    rows: int
    scenario: Scenario
    local: list[Measurement] = field(default_factory=list)
    plain: list[Measurement] = field(default_factory=list)
    failure: str | None = None

    @property
    def local_seconds(self) -> float | None:
        return statistics.median(m.seconds for m in self.local) if self.local else None

    @property
    def plain_seconds(self) -> float | None:
        return statistics.median(m.seconds for m in self.plain) if self.plain else None

    @property
    def ratio(self) -> float | None:
        if self.local_seconds is None or not self.plain_seconds:
            return None
        return self.local_seconds / self.plain_seconds

    @property
    def cpu_ratio(self) -> float | None:
        """Median CPU seconds of the local runs over the plain script's."""
        if not self.local or not self.plain:
            return None
        plain = statistics.median(m.cpu_seconds for m in self.plain)
        return statistics.median(m.cpu_seconds for m in self.local) / plain if plain else None

    def step_medians(self) -> dict[str, float]:
        names = [name for m in self.local[:1] for name in m.step_seconds]
        return {name: statistics.median(m.step_seconds.get(name, 0.0) for m in self.local) for name in names}

    def metrics_difference(self) -> float | None:
        """Largest absolute difference of RMSE/MAE/R2 between the local run and the plain script."""
        pairs = [
            (a.metrics, b.metrics) for a, b in zip(self.local, self.plain, strict=False) if a.metrics and b.metrics
        ]
        if not pairs:
            return None
        return max(abs(local[key] - plain[key]) for local, plain in pairs for key in COMPARED_METRICS)


@dataclass
class Project:
    path: Path
    target: str
    test_size: float
    seed: int
    alpha: float


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=(),
        help="comma-separated row counts of synthetic data sets to run too, e.g. 10000,1000000 (default: none)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command per data set; the median counts")
    parser.add_argument("--quick", action="store_true", help="smoke check: --sizes 10000 --repeat 1")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="interpreter of both commands")
    parser.add_argument("--template", type=Path, default=TEMPLATE_DIR, help="the cookiecutter template to render")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a single command is killed")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary folder (default: system)")
    parser.add_argument("--keep", action="store_true", help="keep the rendered projects and their runs/ folders")
    parser.add_argument("--summary-json", type=Path, help="also write the summary table there, for other benchmarks")
    return parser


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of row counts") from None
    if any(size < 100 for size in sizes):
        raise argparse.ArgumentTypeError("every size must be at least 100 rows")
    return sizes


def tail(text: str, lines: int = FAILURE_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def say(message: str = "") -> None:
    print(message, flush=True)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """End the wrapper and everything it started (they share the session it leads)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def measure(argv: list[str], cwd: Path, env: dict[str, str], python: Path, timeout: float) -> Measurement:
    """Run ``argv`` in ``cwd`` under a fresh wrapper process; its wall clock, peak RSS and combined output."""
    with tempfile.TemporaryDirectory(prefix="measure-") as scratch:
        result_path, log_path = Path(scratch) / "result.json", Path(scratch) / "output.log"
        wrapper = [str(python), "-I", "-S", "-c", WRAPPER, str(result_path), *argv]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                wrapper, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(process)
                output = log_path.read_text(errors="replace")
                raise BenchmarkError(
                    f"timed out after {timeout:.0f}s: {shlex.join(argv)}\n(cwd {cwd})\n{tail(output)}"
                ) from None
            except BaseException:  # Ctrl-C: the command runs in its own session and would not see it
                kill_group(process)
                raise
        output = log_path.read_text(errors="replace")
        if not result_path.is_file():
            raise BenchmarkError(f"the measuring wrapper failed (exit {process.returncode}) for: {shlex.join(argv)}")
        result = json.loads(result_path.read_text())
    if result["returncode"] != 0:
        raise BenchmarkError(
            f"exit code {result['returncode']}: {shlex.join(argv)}\n(cwd {cwd})\n"
            f"--- last {FAILURE_TAIL_LINES} lines of its output ---\n{tail(output)}"
        )
    return Measurement(
        seconds=result["seconds"],
        cpu_seconds=result["cpu_seconds"],
        max_rss_bytes=result["max_rss_bytes"],
        output=output,
    )


def render(template: Path, python: Path, destination: Path, *context: str) -> Path:
    """The default project of ``template`` with cookiecutter's ``key=value`` ``context``, rendered into
    ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    config = destination / "cookiecutter.yml"  # replaces ~/.cookiecutterrc; the replay lands here, not in HOME
    config.write_text(json.dumps({"replay_dir": str(destination / ".cookiecutter_replay")}))
    argv = [str(python), "-m", "cookiecutter", "--no-input", "--config-file", str(config), str(template), *context]
    argv += ["--output-dir", str(destination)]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        lines = (completed.stdout + completed.stderr).rstrip().splitlines()
        if len(lines) > 2 * FAILURE_TAIL_LINES:  # cookiecutter puts the error first, then may dump the whole context
            lines = [*lines[:FAILURE_TAIL_LINES], "[...]", *lines[-FAILURE_TAIL_LINES:]]
        output = "\n".join(lines)
        raise BenchmarkError(f"rendering failed (exit {completed.returncode}): {shlex.join(argv)}\n{output}")
    projects = [path for path in destination.iterdir() if path.is_dir() and not path.name.startswith(".")]
    if len(projects) != 1:
        raise BenchmarkError(f"rendering produced {len(projects)} folders in {destination}, expected one")
    return projects[0]


def digest(folder: Path) -> str:
    """A short fingerprint of the rendered project (the template may change between benchmark runs)."""
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        sha.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()[:12]


def load_project(path: Path) -> Project:
    """The pipeline parameters the plain script must use too, read from the project itself."""
    config = yaml.safe_load((path / "config.yml").read_text())
    model = config["model"]
    if f"model={model['type']}" != PLAIN_SCRIPT_MODEL:
        raise BenchmarkError(f"{path}: the plain script mirrors the ridge model only, config.yml has {model['type']!r}")
    return Project(
        path=path,
        target=str(config["target_column"]),
        test_size=float(config["test_size"]),
        seed=int(config["random_seed"]),
        alpha=float(model["alpha"]),
    )


def synthetic_frame(rows: int, seed: int) -> pd.DataFrame:
    """Rows of the default schema with realistic ranges, gaps like the sample's, and a learnable target."""
    rng = np.random.default_rng(seed)
    age = np.clip(21 + rng.gamma(1.3, 8.5, rows), 21, 81).astype(np.int64)
    pregnancies = np.clip(rng.poisson(1.2 + 0.22 * (age - 21)), 0, 17).astype(np.int64)
    bmi = np.round(np.clip(rng.normal(32.5, 6.9, rows), 18.2, 67.1), 1)
    skin = np.round(np.clip(rng.normal(29.0 + 0.6 * (bmi - 32.5), 8.5, rows), 7, 99))
    glucose = np.clip(rng.normal(121 + 0.5 * (age - 32) + 0.4 * (bmi - 32.5), 28, rows), 44, 199).astype(np.int64)
    pedigree = np.round(np.clip(rng.lognormal(np.log(0.39), 0.6, rows), 0.078, 2.42), 3)
    logit = -0.75 + 0.035 * (glucose - 121) + 0.05 * (bmi - 32.5) + 0.03 * (age - 32) + 0.8 * (pedigree - 0.47)
    diabetic = rng.random(rows) < 1 / (1 + np.exp(-logit))
    pressure = (
        72
        + 0.35 * (age - 32)
        + 0.45 * (bmi - 32.5)
        + 0.06 * (glucose - 121)
        + 0.15 * (skin - 29)
        + 2.0 * diabetic
        + rng.normal(0, 10, rows)
    )
    pressure = np.round(np.clip(pressure, 24, 122))
    pressure[rng.random(rows) < 0.02] = np.nan
    skin[rng.random(rows) < 0.15] = np.nan
    bmi[rng.random(rows) < 0.005] = np.nan
    return pd.DataFrame(
        {
            "Pregnancies": pregnancies,
            "Glucose": glucose,
            "BloodPressure": pressure,
            "SkinThickness": skin,
            "BMI": bmi,
            "DiabetesPedigreeFunction": pedigree,
            "Age": age,
            "Diabetic": np.where(diabetic, "Yes", "No"),
        }
    )


def copy_project(rendered: Path, destination: Path) -> Path:
    copy = destination / rendered.name
    shutil.copytree(rendered, copy)
    return copy


def local_run(project: Project, scenario: Scenario, python: Path, env: dict[str, str], timeout: float) -> Measurement:
    argv = [str(python), "-m", ENGINE, "run", "--local", *scenario.options]
    measurement = measure(argv, project.path, env, python, timeout)
    completed = RUN_COMPLETED.search(measurement.output)
    if completed is None:
        raise BenchmarkError(
            f"the local run exited 0 but printed no 'run ... completed' line:\n{tail(measurement.output)}"
        )
    summary = json.loads((Path(completed[2].strip()) / "run.json").read_text())
    measurement.step_seconds = {step["name"]: float(step["seconds"]) for step in summary["steps"]}
    report = summary["outputs"].get("report")
    if report and (Path(report) / "metrics.json").is_file():
        measurement.metrics = json.loads((Path(report) / "metrics.json").read_text())
    return measurement


def plain_run(project: Project, script: Path, python: Path, env: dict[str, str], timeout: float) -> Measurement:
    argv = [
        str(python),
        str(script),
        "--data",
        str(DATA_FILE),
        "--target",
        project.target,
        "--test-size",
        str(project.test_size),
        "--seed",
        str(project.seed),
        "--alpha",
        str(project.alpha),
    ]
    measurement = measure(argv, project.path, env, python, timeout)
    measurement.metrics = json.loads(measurement.output.strip().splitlines()[-1])
    return measurement


def benchmark(
    results: list[Result], project: Project, script: Path, args: argparse.Namespace, env: dict[str, str]
) -> None:
    """``--repeat`` rounds of each result's scenario in turn, each local run followed by the plain script; a result
    stops at its first failure, which it records."""
    for number in range(1, args.repeat + 1):
        for result in results:
            if result.failure:
                continue
            name = f"{result.label} {result.rows:,} rows, {result.scenario.label}"
            for kind, runs in (("local", result.local), ("plain", result.plain)):
                try:
                    if kind == "local":
                        result.scenario.prepare(project.path, number)
                        measurement = local_run(project, result.scenario, args.python, env, args.timeout)
                    else:
                        measurement = plain_run(project, script, args.python, env, args.timeout)
                except BenchmarkError as error:
                    result.failure = f"{kind} run failed on {name}: {error}"
                    say(f"  {name}: {kind} run {number}/{args.repeat} FAILED")
                    break
                runs.append(measurement)
                say(
                    f"  {name}: {kind} run {number}/{args.repeat}: {measurement.seconds:7.2f}s, "
                    f"{measurement.cpu_seconds:6.2f}s CPU, {measurement.max_rss_bytes / MIB:6.0f} MiB peak RSS"
                )


@dataclass
class Floor:
    steps: list[str]
    floor: list[Measurement] = field(default_factory=list)
    plain: list[Measurement] = field(default_factory=list)

    def line(self) -> str:
        if not self.floor or not self.plain:
            return "imports floor  no complete measurement"
        floor = statistics.median(m.seconds for m in self.floor)
        plain = statistics.median(m.seconds for m in self.plain)
        floor_cpu = statistics.median(m.cpu_seconds for m in self.floor)
        plain_cpu = statistics.median(m.cpu_seconds for m in self.plain)
        return (
            f"imports floor  {floor:6.2f} s, plain {plain:6.2f} s, ratio {floor / plain:5.2f} (CPU time ratio "
            f"{floor_cpu / plain_cpu:.2f}): one Python importing what {', '.join(self.steps)} import; no local run "
            "that starts its processes afresh gets below it"
        )


def imports_floor(project: Project, script: Path, args: argparse.Namespace, env: dict[str, str]) -> Floor:
    """``--repeat`` rounds of the imports floor of the steps a local run of ``project`` ran, each followed by the
    plain script."""
    runs = sorted((project.path / "runs").glob("*/run.json"))
    steps = [step["name"] for step in json.loads(runs[-1].read_text())["steps"]] if runs else []
    folders = [
        str(project.path / "components" / name) for name in steps if (project.path / "components" / name).is_dir()
    ]
    result = Floor(steps)
    argv = [str(args.python), "-c", IMPORTS_FLOOR, *folders]
    for number in range(1, args.repeat + 1):
        result.floor.append(measure(argv, project.path, env, args.python, args.timeout))
        result.plain.append(plain_run(project, script, args.python, env, args.timeout))
        say(
            f"  imports floor {number}/{args.repeat}: {result.floor[-1].seconds:7.2f}s, "
            f"{result.floor[-1].cpu_seconds:6.2f}s CPU; plain {result.plain[-1].seconds:7.2f}s"
        )
    return result


def seconds_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * width for width in widths), *(line(row) for row in rows)])


def summary_rows(results: list[Result]) -> list[list[str]]:
    rows = []
    for result in results:
        ratio = result.ratio
        local_rss = max((m.max_rss_bytes for m in result.local), default=None)
        plain_rss = max((m.max_rss_bytes for m in result.plain), default=None)
        difference = result.metrics_difference()
        r2 = result.plain[0].metrics.get("r2") if result.plain else None
        target = result.scenario.target_ratio
        rows.append(
            [
                result.label,
                f"{result.rows:,}",
                result.scenario.label,
                seconds_cell(result.local_seconds),
                seconds_cell(result.plain_seconds),
                "-" if ratio is None else f"{ratio:.2f}",
                "-" if result.cpu_ratio is None else f"{result.cpu_ratio:.2f}",
                f"{target:g}",
                "FAILED" if result.failure else ("-" if ratio is None else ("yes" if ratio <= target else "NO")),
                "-" if local_rss is None else f"{local_rss / MIB:.0f}",
                "-" if plain_rss is None else f"{plain_rss / MIB:.0f}",
                "-" if r2 is None else f"{r2:.3f}",
                "-" if difference is None else ("yes" if difference <= METRICS_TOLERANCE else f"NO ({difference:.2g})"),
            ]
        )
    return rows


SUMMARY_HEADER = [
    "data",
    "rows",
    "run",
    "local s",
    "plain s",
    "ratio",
    "CPU ratio",
    "target",
    "met",
    "local MiB",
    "plain MiB",
    "R2",
    "same metrics",
]


def shipped_line(result: Result) -> str:
    scenario = result.scenario
    if result.ratio is None:
        return f"{scenario.label:<14} no complete measurement ({scenario.command})"
    verdict = "meets" if result.ratio <= scenario.target_ratio else "does NOT meet"
    return (
        f"{scenario.label:<14} local {result.local_seconds:6.2f} s, plain {result.plain_seconds:6.2f} s, "
        f"ratio {result.ratio:5.2f}: {verdict} <= {scenario.target_ratio:g}  (CPU time ratio {result.cpu_ratio:.2f}; "
        f"{scenario.command})"
    )


def summary_record(result: Result) -> dict[str, object]:
    return {
        "label": result.label,
        "rows": result.rows,
        "scenario": result.scenario.label,
        "command": result.scenario.command,
        "target_ratio": result.scenario.target_ratio,
        "local_seconds": result.local_seconds,
        "plain_seconds": result.plain_seconds,
        "ratio": result.ratio,
        "cpu_ratio": result.cpu_ratio,
        "failure": result.failure,
    }


def breakdown(results: list[Result]) -> str:
    """Median seconds per step of the local runs, and what is left: the runner's own start-up and bookkeeping."""
    names = next((list(r.step_medians()) for r in results if r.local), [])
    rows = []
    for result in results:
        if not result.local:
            continue
        steps = result.step_medians()
        local_seconds = result.local_seconds or 0.0
        rows.append(
            [
                result.label,
                f"{result.rows:,}",
                result.scenario.label,
                *(f"{steps.get(name, 0.0):.2f}" for name in names),
                f"{local_seconds - sum(steps.values()):.2f}",
                seconds_cell(result.local_seconds),
                seconds_cell(result.plain_seconds),
            ]
        )
    return table(["data", "rows", "run", *names, "runner", "local total", "plain total"], rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.sizes, args.repeat = (10_000,), 1
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    args.python = args.python.absolute()
    workdir = Path(tempfile.mkdtemp(prefix="local-run-benchmark-", dir=args.workdir))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ["src", os.environ.get("PYTHONPATH")]))}
    results: list[Result] = []
    floor: Floor | None = None
    failed = False
    try:
        say("Local pipeline run vs. one plain script, same machine, same interpreter")
        say(f"  template:  {args.template.resolve()}")
        say(f"  python:    {args.python}, {os.cpu_count()} CPUs, {platform.platform()}")
        say(f"  work dir:  {workdir}")
        say(f"  repeat:    {args.repeat} (median reported); target ratios local/plain in the tables")
        say(f"  load avg:  {load_average()} at start (other work on this machine skews the figures)")
        started = time.perf_counter()
        rendered = render(args.template, args.python, workdir / "render", PLAIN_SCRIPT_MODEL)
        project = load_project(rendered)
        say(f"  rendered:  {rendered.name} in {time.perf_counter() - started:.1f}s (files digest {digest(rendered)})")
        script = workdir / "plain_pipeline.py"
        script.write_text(PLAIN_SCRIPT)
        say(f"  local run: python -m {ENGINE} run --local [--no-reuse], in the project (`make run`)")
        say(
            f"  plain:     python {script.name} --data {DATA_FILE} --target {project.target} "
            f"--test-size {project.test_size:g} --seed {project.seed} --alpha {project.alpha:g}"
        )
        say()

        shipped = copy_project(rendered, workdir / "shipped")
        shipped_rows = len(pd.read_csv(shipped / DATA_FILE))
        results += [Result("shipped", shipped_rows, scenario) for scenario in SHIPPED_SCENARIOS]
        benchmark(results, replace(project, path=shipped), script, args, env)
        floor = imports_floor(replace(project, path=shipped), script, args, env)

        for rows in args.sizes:
            started = time.perf_counter()
            frame = synthetic_frame(rows, args.seed)
            generated = time.perf_counter() - started
            copy = copy_project(rendered, workdir / f"rows-{rows}")
            frame.to_csv(copy / DATA_FILE, index=False)
            written = time.perf_counter() - started - generated
            megabytes = (copy / DATA_FILE).stat().st_size / MIB
            say(
                f"  synthetic {rows:,} rows: generated in {generated:.2f}s, written in {written:.2f}s "
                f"({megabytes:.1f} MiB, {frame['BloodPressure'].isna().mean():.1%} empty target)"
            )
            results.append(Result("synthetic", rows, SIZE_SCENARIO))
            benchmark(results[-1:], replace(project, path=copy), script, args, env)
    except BenchmarkError as error:
        say(f"\nERROR: {error}")
        failed = True
    finally:
        if results:
            say(f"\n== Default project, shipped {DATA_FILE} ({results[0].rows:,} rows), median of {args.repeat} ==")
            for result in results[: len(SHIPPED_SCENARIOS)]:
                say(shipped_line(result))
            if floor:
                say(floor.line())
            say(f"\n== All data sets: median wall clock of {args.repeat}, peak RSS of the largest process ==")
            say(table(SUMMARY_HEADER, summary_rows(results)))
            say("\n== Local run by step (median seconds from run.json; runner = local total minus the steps) ==")
            say(breakdown(results))
            for result in results:
                if result.failure:
                    failed = True
                    say(f"\nFAILED: {result.failure}")
            if args.summary_json:
                args.summary_json.write_text(json.dumps([summary_record(result) for result in results], indent=2))
        say(f"\nload avg: {load_average()} at the end")
        if failed or args.keep:
            say(f"\nkept {workdir} (step logs: <project>/runs/<run id>/<step>/step.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
