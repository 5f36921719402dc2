"""Run Azure ML's published pipeline jobs through the engine's command, offline, and tabulate what happens.

The 20 ``pipeline.yml`` files of Azure/azureml-examples' ``cli/jobs/pipelines-with-components/`` that issue 15
names ship with the engine's tests, in tests/data/third_party/azureml-examples (MIT licence, Microsoft;
tests/data/README.md names the commit). By default this runs those; give it another copy of the repository (a newer
checkout) to run its files:

    python aml-pipeline-kit/scripts/run_published_examples.py [~/src/azureml-examples]

The engine needs nothing else: each example runs as

    aml-pipeline-kit run --local --no-reuse --job <pipeline.yml> --data REFERENCE=PATH ...

would, from a scratch folder that is no project (runs go to its runs/, MLflow to its mlruns.db): one interpreter
calls the command's ``main`` with those arguments for every file in turn, as azure-ai-ml, which loads the files,
takes seconds to import. tests/test_published_pipelines.py runs them the same way (``run_examples``) and asserts on
what each leaves.

``--data`` maps what a user of these examples would map to local copies from the same repository
(``SUBSTITUTES``): 4d's data asset to the folder its ``data.yml`` registers, the sweep's ``wasbs://`` iris.csv to the
iris.csv of the repository's Spark example. This script's own ``--data REFERENCE=PATH`` (PATH relative to the
examples folder) adds or replaces one. Each example ends completed, refused (one line, before anything ran) or
failed (a step failed: the line names it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1]
VENDORED = ENGINE / "tests" / "data" / "third_party" / "azureml-examples"
PIPELINES = "cli/jobs/pipelines-with-components"
EXAMPLES = {  # issue 15's twenty, by the short names the issue uses
    "1a": "basics/1a_e2e_local_components",
    "1b": "basics/1b_e2e_registered_components",
    "2a": "basics/2a_basic_component",
    "2b": "basics/2b_component_with_input_output",
    "3a": "basics/3a_basic_pipeline",
    "3b": "basics/3b_pipeline_with_data",
    "4a": "basics/4a_local_data_input",
    "4b": "basics/4b_datastore_datapath_uri",
    "4c": "basics/4c_web_url_input",
    "4d": "basics/4d_data_input",
    "5a": "basics/5a_env_public_docker_image",
    "5b": "basics/5b_env_registered",
    "5c": "basics/5c_env_conda_file",
    "6a": "basics/6a_tf_hello_world",
    "6b": "basics/6b_pytorch_hello_world",
    "6c": "basics/6c_r_iris",
    "nyc_taxi_data_regression": "nyc_taxi_data_regression",
    "pipeline_with_hyperparameter_sweep": "pipeline_with_hyperparameter_sweep",
    "ppc nyc_taxi": "pipeline_with_pipeline_component/nyc_taxi_data_regression_with_pipeline_component",
    "ppc train_eval": "pipeline_with_pipeline_component/pipeline_with_train_eval_pipeline_component",
}
SUBSTITUTES = {
    "local-folder-example@latest": f"{PIPELINES}/basics/4d_data_input/data",
    "wasbs://datasets@azuremlexamples.blob.core.windows.net/iris.csv": (
        "cli/jobs/pipelines/add-column-and-word-count-using-spark/data/iris.csv"
    ),
}
# Runs in the scratch folder, with this script's folder on the path (``run_examples``).
IN_SCRATCH = "import sys; from run_published_examples import run_here; run_here(sys.argv[1], sys.argv[2:])"
REASON_WIDTH = 150


@dataclass(frozen=True)
class Outcome:
    """What ``run --local --job`` did with one example: its exit code and output, and the folders it left under
    runs/ (none: nothing ran)."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    left: list[str]

    @property
    def status(self) -> str:
        return {0: "completed", 2: "refused"}.get(self.returncode, "failed")

    @property
    def reason(self) -> str:
        """The line that says why it was refused or failed: check's first finding, else the CLI's last line."""
        if not self.returncode:
            return ""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        findings = [line for line in lines if "] " in line and ": [" in line]
        return findings[0] if findings else lines[-1].removeprefix("error: ") if lines else ""


def substitute(text: str) -> tuple[str, str]:
    reference, separator, path = text.partition("=")
    if not separator or not reference or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not REFERENCE=PATH")
    return reference, path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "examples",
        type=Path,
        nargs="?",
        default=VENDORED,
        help="a copy of Azure/azureml-examples (the folder holding cli/); default: the one the tests ship",
    )
    parser.add_argument("--data", type=substitute, action="append", default=[], metavar="REFERENCE=PATH")
    parser.add_argument("--only", action="append", choices=EXAMPLES, help="run this example only (repeatable)")
    return parser


def job_files(examples: Path, names: list[str]) -> dict[str, Path]:
    return {name: examples / PIPELINES / EXAMPLES[name] / "pipeline.yml" for name in names}


def data_arguments(examples: Path, substitutes: dict[str, str]) -> list[str]:
    """``--data REFERENCE=PATH`` for each of ``substitutes``, its path in ``examples``."""
    return [word for reference, path in substitutes.items() for word in ("--data", f"{reference}={examples / path}")]


def run_examples(
    scratch: Path, jobs: dict[str, Path], data: list[str], env: dict[str, str] | None = None
) -> dict[str, Outcome]:
    """Each of ``jobs`` (name -> pipeline.yml) run from ``scratch`` with ``run --local --no-reuse --job`` and the
    ``data`` arguments, in turn, by one interpreter; a line per example on stderr as it ends."""
    environment = {**(env or os.environ), "PYTHONPATH": str(Path(__file__).parent)}
    with tempfile.TemporaryDirectory(prefix="published-examples-") as outcomes:
        results = Path(outcomes) / "outcomes.json"
        arguments = [str(results), json.dumps(data), *(f"{name}={path}" for name, path in jobs.items())]
        finished = subprocess.run([sys.executable, "-c", IN_SCRATCH, *arguments], cwd=scratch, env=environment)
        if finished.returncode:
            raise RuntimeError(f"the examples' interpreter ended with exit code {finished.returncode}")
        return {outcome["name"]: Outcome(**outcome) for outcome in json.loads(results.read_text())}


def run_here(results: str, arguments: list[str]) -> None:
    """In the scratch folder: the engine's ``main`` for each ``NAME=PATH`` of the jobs that follow the JSON list of
    ``--data`` arguments; their outcomes into ``results``."""
    from aml_pipeline_kit.cli import main

    data, *jobs = arguments
    runs = Path.cwd() / "runs"
    outcomes = []
    for job in jobs:
        name, _, path = job.partition("=")
        before = set(runs.glob("*"))
        stdout, stderr = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            returncode = main(["run", "--local", "--no-reuse", "--job", path, *json.loads(data)])
        seconds = time.perf_counter() - started
        left = sorted(str(folder) for folder in set(runs.glob("*")) - before)
        outcomes.append(Outcome(name, returncode, stdout.getvalue(), stderr.getvalue(), seconds, left))
        print(row(outcomes[-1]), file=sys.stderr, flush=True)
    Path(results).write_text(json.dumps([asdict(outcome) for outcome in outcomes]))


def row(outcome: Outcome) -> str:
    return f"{outcome.name:<36}{outcome.status:<11}{outcome.seconds:>6.1f}s  {outcome.reason[:REASON_WIDTH]}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    examples = args.examples.resolve()
    if not (examples / PIPELINES).is_dir():
        print(f"error: {args.examples}: no {PIPELINES} folder in it (give a copy of Azure/azureml-examples)")
        return 2
    data = data_arguments(examples, {**SUBSTITUTES, **dict(args.data)})
    with tempfile.TemporaryDirectory(prefix="published-examples-") as scratch:
        outcomes = run_examples(Path(scratch), job_files(examples, args.only or list(EXAMPLES)), data).values()
    counts = {status: sum(outcome.status == status for outcome in outcomes) for status in ("completed", "refused")}
    failed = len(outcomes) - sum(counts.values())
    print(f"\n{counts['completed']} of {len(outcomes)} completed, {counts['refused']} refused, {failed} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
