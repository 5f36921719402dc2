"""Run Azure ML's published pipeline jobs through the default render's local runner, and tabulate what happens.

Not part of the test suite, and it fetches nothing: give it a copy of Azure/azureml-examples (MIT licence; not
committed here, as its files are Microsoft's) and it runs the 20 ``pipeline.yml`` files under
``cli/jobs/pipelines-with-components/`` that issue 15 names, each with
``python -m <package> run --local --job <file>`` in a scratch copy of ``examples/diabetes-blood-pressure``:

    .venv/bin/python scripts/run_published_examples.py ~/src/azureml-examples

The project's ``local.data_substitutes`` map what a user of these examples would map to local copies from the
same repository (``SUBSTITUTES``): 4d's data asset to the folder its ``data.yml`` registers, the sweep's
``wasbs://`` iris.csv to the iris.csv of the repository's Spark example. ``--data REFERENCE=PATH`` (PATH
relative to the examples folder) adds or replaces one. Each example ends completed, refused (one line, before
anything ran) or failed (a step failed: the line names it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT = TEMPLATE / "examples" / "diabetes-blood-pressure"
PACKAGE = "diabetes_blood_pressure"
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
REASON_WIDTH = 150


def substitute(text: str) -> tuple[str, str]:
    reference, separator, path = text.partition("=")
    if not separator or not reference or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not REFERENCE=PATH")
    return reference, path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("examples", type=Path, help="a copy of Azure/azureml-examples (the folder holding cli/)")
    parser.add_argument("--data", type=substitute, action="append", default=[], metavar="REFERENCE=PATH")
    parser.add_argument("--only", action="append", choices=EXAMPLES, help="run this example only (repeatable)")
    return parser


def scratch_project(folder: Path, examples: Path, substitutes: dict[str, str]) -> Path:
    project = folder / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("runs", "mlruns.db*", "mlartifacts", ".venv"))
    config_file = project / "config.yml"
    config = yaml.safe_load(config_file.read_text())
    config["local"]["data_substitutes"] = {reference: str(examples / path) for reference, path in substitutes.items()}
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def outcome(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """completed / refused / failed, and the line that says why."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    last = lines[-1].removeprefix("error: ") if lines else ""
    if result.returncode == 0:
        return "completed", ""
    if result.returncode == 2:
        return "refused", last
    findings = [line for line in [*result.stderr.splitlines()] if "] " in line and ": [" in line]
    return "failed", findings[0] if findings else last


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = args.examples.resolve() / PIPELINES
    if not root.is_dir():
        print(f"error: {args.examples}: no {PIPELINES} folder in it (give a copy of Azure/azureml-examples)")
        return 2
    with tempfile.TemporaryDirectory(prefix="published-examples-") as scratch:
        substitutes = {**SUBSTITUTES, **dict(args.data)}
        project = scratch_project(Path(scratch), args.examples.resolve(), substitutes)
        environment = {**os.environ, "PYTHONPATH": str(project / "src")}
        rows = []
        for name, folder in EXAMPLES.items():
            if args.only and name not in args.only:
                continue
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", PACKAGE, "run", "--local", "--job", str(root / folder / "pipeline.yml")],
                cwd=project,
                env=environment,
                capture_output=True,
                text=True,
                check=False,
            )
            status, reason = outcome(result)
            rows.append((name, status, time.perf_counter() - started, reason))
            print(f"{name:<36}{status:<11}{rows[-1][2]:>6.1f}s  {reason[:REASON_WIDTH]}", flush=True)
    counts = {status: sum(row[1] == status for row in rows) for status in ("completed", "refused", "failed")}
    print(f"\n{counts['completed']} of {len(rows)} completed, {counts['refused']} refused, {counts['failed']} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
