"""Azure ML's own published pipeline jobs, run offline by the engine's ``run --local --job`` alone: from a scratch
folder that is no project, their data references mapped with ``--data REFERENCE=PATH``.

data/third_party/azureml-examples holds the 20 ``pipeline.yml`` files of Azure/azureml-examples'
``cli/jobs/pipelines-with-components/`` that issue 15 names, as Microsoft publishes them (data/README.md).
Those that need no workspace complete, and each is held to what its scripts write; those that need Azure, a
cluster or a program missing here are refused in one line before anything runs; the two NYC taxi pipelines
stop in their first step, written for pandas 1, in one line. ``../scripts/run_published_examples.py`` prints the
same outcomes as a table: both run the examples through its ``run_examples`` (one interpreter per group, as
importing azure-ai-ml, which loads the files, takes seconds).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shlex
import sqlite3
import sys
from pathlib import Path

import pytest
import yaml
from projects import ENV, no_step_host_left

from aml_pipeline_kit.project import find_project_root

ENGINE = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "run_published_examples", ENGINE / "scripts" / "run_published_examples.py"
)
published = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = published  # its dataclass looks its module up there
_spec.loader.exec_module(published)
Outcome = published.Outcome

BASICS = published.VENDORED / published.PIPELINES / "basics"
SWEEP = "pipeline_with_hyperparameter_sweep"
COMPLETING = ["1a", "2a", "2b", "3a", "3b", "4a", "4c", "4d", "5a", "5b", "ppc train_eval"]  # and the sweep
REFUSALS = {
    "1b": "node 'train_job' uses component 'my_train@latest', registered in an Azure ML workspace: the local runner "
    "runs components from their spec files (component: ./<spec>.yml)",
    "4b": "pipeline output 'pipeline_sample_output_data' is written to "
    "'azureml://datastores/workspaceblobstore/paths/azureml/4b_datastore_datapath_uri', a datastore path that needs "
    "a workspace: locally every output goes under runs/; remove its path to run locally",
    "5c": "node 'hello_python_world_job': its environment's conda file asks for 'pyjokes', which this Python "
    "environment lacks (environments are not built locally): install it here, or run on Azure ML",
    "6a": "node 'tf_job' runs tensorflow distributed training on 2 instance(s), which needs an Azure ML cluster: the "
    "local runner runs single-process steps",
    "6b": "node 'pytorch_job' runs pytorch distributed training on 2 instance(s), which needs an Azure ML cluster: "
    "the local runner runs single-process steps",
    "6c": "node 'r_iris_example': its command runs 'Rscript', which is not installed here (environments are not "
    "built locally: steps run in this Python environment)",
}
PANDAS_1_STEPS = {"nyc_taxi_data_regression": "prep_job", "ppc nyc_taxi": "data_pipeline.prep_job"}
REGISTRY_ENVIRONMENT = "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"
IRIS_SPECIES = {"Iris-setosa", "Iris-versicolor", "Iris-virginica"}
# Each sweep trial saves its model twice (autolog, then save_model), and each time MLflow infers its pip requirements
# by loading it in a fresh interpreter: two thirds of the sweep's CPU. With no time for that, MLflow writes its
# flavour's default requirements (scikit-learn, skops) instead, with a warning in the step's log; the trials,
# their metrics, the best model and its predictions are the same.
SAVE_MODELS_WITH_DEFAULT_REQUIREMENTS = {"MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT": "0"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example this module runs: no project (no config.yml and components/ in it or above)."""
    folder = tmp_path_factory.mktemp("published")
    assert find_project_root(folder, {}) is None
    return folder


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*")}


def run(scratch: Path, names: list[str], env: dict[str, str] | None = None) -> dict[str, Outcome]:
    """The outcomes of ``names``, ``env`` added to the tests' environment; the examples' folder is left as it was
    (steps write into copies only)."""
    before = tree(published.VENDORED)
    jobs = published.job_files(published.VENDORED, names)
    data = published.data_arguments(published.VENDORED, published.SUBSTITUTES)
    outcomes = published.run_examples(scratch, jobs, data, env={**ENV, **(env or {})})
    assert tree(published.VENDORED) == before
    assert no_step_host_left(scratch)
    return outcomes


def run_dir_of(outcome: Outcome) -> Path:
    """The one run folder ``outcome`` left (beside it, the first run of a project creates runs/.reuse)."""
    (run_dir,) = [Path(folder) for folder in outcome.left if (Path(folder) / "run.json").is_file()]
    return run_dir


def completed(outcome: Outcome, steps: list[str]) -> tuple[Path, dict]:
    """The run folder and summary of an example that completed, every one of ``steps`` with it, tracked in the
    scratch folder's MLflow store under the job's experiment_name (Azure ML's ``Default`` if it names none)."""
    assert (outcome.returncode, outcome.stderr) == (0, ""), outcome.stderr
    run_dir = run_dir_of(outcome)
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "completed"
    assert {step["name"]: step["status"] for step in summary["steps"]} == dict.fromkeys(steps, "completed")
    assert f"\nrun {summary['run_id']} completed: {run_dir}\n" in outcome.stdout
    (job,) = published.job_files(published.VENDORED, [outcome.name]).values()
    with sqlite3.connect(run_dir.parents[1] / "mlruns.db") as store:
        (experiment,) = store.execute(
            "SELECT experiments.name FROM runs JOIN experiments ON runs.experiment_id = experiments.experiment_id"
            " WHERE runs.run_uuid = ?",
            (summary["mlflow_run_id"],),
        ).fetchone()
    assert experiment == yaml.safe_load(job.read_text()).get("experiment_name", "Default")
    return run_dir, summary


def log(run_dir: Path, step: str) -> str:
    return (run_dir / step / "step.log").read_text()


def timestamped_file(folder: Path) -> Path:
    """The one ``file-<time>.txt`` the basics' hello.py scripts write into their output folder."""
    (written,) = folder.iterdir()
    stamp = written.name.removeprefix("file-").removesuffix(".txt")
    assert re.fullmatch(r"[A-Z][a-z]{2}-\d\d-\d{4}-\d\d-\d\d-\d\d", stamp)
    assert written.read_text() == f"Logging date time: {stamp}\n"
    return written


def check_1a(outcome: Outcome) -> None:
    run_dir, summary = completed(outcome, ["train_job", "score_job", "evaluate_job"])
    model = (run_dir / "train_job" / "model_output" / "model.txt").read_text()
    assert re.fullmatch(r"This is a dummy model with id: [0-9a-f-]{36} generated at: .+\n", model)
    assert (
        run_dir / "score_job" / "score_output" / "score.txt"
    ).read_text() == f"Scored with the following mode:\n{model}"
    assert (run_dir / "evaluate_job" / "eval_output" / "eval_result.txt").read_text().startswith("Eval done at ")
    train = log(run_dir, "train_job")
    assert "Max epocs: 20\nLearning rate: 1.8\nLearning rate: time-based\n" in train  # the pipeline's literals
    assert f"Training data path: {BASICS / '1a_e2e_local_components' / 'data'}\n" in train  # relative to its file
    assert "reading file: sample1.csv ..." in train
    assert summary["outputs"] == {
        "pipeline_job_trained_model": str(run_dir / "train_job" / "model_output"),
        "pipeline_job_evaluation_report": str(run_dir / "evaluate_job" / "eval_output"),
    }


def check_hello(outcome: Outcome, environment: str) -> None:
    """2a, 5a, 5b: one step, no inputs or outputs, ``python hello.py``; its environment named in a note."""
    run_dir, _ = completed(outcome, ["hello_python_world_job"])
    assert log(run_dir, "hello_python_world_job").startswith("Hello Python World\n")
    assert f"in this Python environment, not in {environment} (1 step)" in outcome.stdout


def check_input_output(outcome: Outcome, input_string: str) -> str:
    """2b, 4a, 4c: one step given a folder (or URL) and a string, writing a file into the pipeline's output."""
    run_dir, summary = completed(outcome, ["hello_python_world_job"])
    output = run_dir / "hello_python_world_job" / "sample_output_data"
    timestamped_file(output)
    assert summary["outputs"] == {"pipeline_sample_output_data": str(output)}
    step_log = log(run_dir, "hello_python_world_job")
    assert f"sample_input_string: {input_string}\n" in step_log
    return step_log


def check_3a(outcome: Outcome) -> None:
    run_dir, _ = completed(outcome, ["component_a", "component_b", "component_c"])  # no edges: side by side
    for letter in "ABC":
        assert log(run_dir, f"component_{letter.lower()}") == f"Hello Python World...\nI'm component {letter} :-)\n"


def check_3b(outcome: Outcome) -> None:
    run_dir, summary = completed(outcome, ["component_a", "component_b", "component_c"])
    for reader, writer in (("component_b", "component_a"), ("component_c", "component_b")):  # each the one before
        written = timestamped_file(run_dir / writer / f"{writer}_output")
        assert f"reading file: {written.name} ...\nLogging date time:" in log(run_dir, reader)
    final = run_dir / "component_c" / "component_c_output"
    timestamped_file(final)
    assert summary["outputs"] == {"final_pipeline_output": str(final)}


def check_4d(outcome: Outcome) -> None:
    run_dir, _ = completed(outcome, ["python_hello_step", "python_world_step"])
    for step, word in (("python_hello_step", "Hello"), ("python_world_step", "World")):
        timestamped_file(run_dir / step / "sample_output_data")
        step_log = log(run_dir, step)
        assert f"sample_input_string: Pipeline_{word}\n" in step_log
        # the asset azureml:local-folder-example@latest, read from the substitute --data maps it to
        assert f"sample_input_data path: {BASICS / '4d_data_input' / 'data'}\n" in step_log
        assert "files in input_data path: \n['sample.csv']\n" in step_log


def check_train_eval(outcome: Outcome) -> None:
    """A pipeline component used twice, then compare: the sub-graphs flattened under their node names."""
    inner = ["train_job", "score_job", "evaluate_job"]
    nodes = ["train_and_evaluate_model1", "train_and_evaluate_model2"]
    run_dir, summary = completed(outcome, [f"{node}.{step}" for node in nodes for step in inner] + ["compare"])
    for node, rate in zip(nodes, ("0.1", "0.01"), strict=True):
        train = log(run_dir, f"{node}.train_job")  # the node's literal, the pipeline's rate, the component's default
        assert f"Max epochs: 20\nLearning rate: {rate}\nLearning rate: time-based\n" in train
        model = (run_dir / f"{node}.train_job" / "model_output" / "model.txt").read_text()
        assert (run_dir / f"{node}.score_job" / "score_output" / "score.txt").read_text().endswith(model)
    lines = [
        f"Model #1: {run_dir / 'train_and_evaluate_model1.train_job' / 'model_output'}",
        f"Evaluation #1: {run_dir / 'train_and_evaluate_model1.evaluate_job' / 'eval_output'}",
        f"Model #2: {run_dir / 'train_and_evaluate_model2.train_job' / 'model_output'}",
        f"Evaluation #2: {run_dir / 'train_and_evaluate_model2.evaluate_job' / 'eval_output'}",
        f"Best model path: {run_dir / 'compare' / 'best_model'}",
    ]
    assert (run_dir / "compare" / "best_model" / "model").read_text().splitlines() == lines
    assert (run_dir / "compare" / "best_result" / "result").read_text().splitlines() == lines
    assert summary["outputs"] == {
        "pipeline_job_best_model": str(run_dir / "compare" / "best_model"),
        "pipeline_job_best_result": str(run_dir / "compare" / "best_result"),
    }


def check_web_url(outcome: Outcome) -> None:
    """4c: the URL reaches the script as itself (nothing is downloaded offline), which it says and goes on."""
    url = "https://dprepdata.blob.core.windows.net/demo/Titanic.csv"
    step_log = check_input_output(outcome, "Hello_Pipeline_World")
    assert f"input_data is neither directory nor a file: {url}\n" in step_log
    assert f"input 'sample_input_data': {url} reaches the step as the URL itself" in outcome.stdout


CHECKS = {
    "1a": check_1a,
    "2a": lambda outcome: check_hello(outcome, "an anonymous environment on image python"),
    "2b": lambda outcome: check_input_output(outcome, "hello_python_world_default"),  # the component's default
    "3a": check_3a,
    "3b": check_3b,
    "4a": lambda outcome: check_input_output(outcome, "Hello_Pipeline_World"),
    "4c": check_web_url,
    "4d": check_4d,
    "5a": lambda outcome: check_hello(outcome, "an anonymous environment on image docker.io/python"),
    "5b": lambda outcome: check_hello(outcome, REGISTRY_ENVIRONMENT),
    "ppc train_eval": check_train_eval,
}


def test_every_published_example_has_one_expected_outcome() -> None:
    """The tests below and the script's table cover the same twenty, each once: 12 complete, 6 refused, 2 fail."""
    groups = [[*COMPLETING, SWEEP], list(REFUSALS), list(PANDAS_1_STEPS)]
    assert sorted(name for group in groups for name in group) == sorted(published.EXAMPLES)
    assert [len(group) for group in groups] == [12, 6, 2]
    assert set(CHECKS) == set(COMPLETING)


@pytest.mark.slow  # runs eleven pipelines
def test_the_published_pipelines_that_need_no_workspace_complete(scratch: Path) -> None:
    outcomes = run(scratch, COMPLETING)
    failures = []
    for name in COMPLETING:
        try:
            CHECKS[name](outcomes[name])
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow  # runs a pipeline of five training trials
def test_the_published_sweep_runs_its_trials_and_predicts_with_the_best(scratch: Path) -> None:
    """pipeline_with_hyperparameter_sweep, its wasbs:// iris.csv mapped to the repository's own copy."""
    outcome = run(scratch, [SWEEP], SAVE_MODELS_WITH_DEFAULT_REQUIREMENTS)[SWEEP]
    trials = [f"sweep_step.trial_{i}" for i in range(5)]
    run_dir, summary = completed(outcome, [*trials, "sweep_step", "predict_step"])
    for node in ("sweep_step", "predict_step"):
        assert f"note: node '{node}': `pip install 'mlflow<2.19' -q` not run" in outcome.stdout

    iris = published.VENDORED / published.SUBSTITUTES["wasbs://datasets@azuremlexamples.blob.core.windows.net/iris.csv"]
    for trial in trials:  # a sample of the search space each, the literals as Azure ML passes them
        arguments = shlex.split((run_dir / trial / "command.txt").read_text())
        values = dict(zip(arguments[2::2], arguments[3::2], strict=True))
        assert (values["--data"], values["--shrinking"], values["--max_iter"]) == (str(iris), "False", "-1")
        assert 0.5 <= float(values["--C"]) <= 0.9
        assert values["--kernel"] in {"rbf", "linear", "poly"}
        assert 0.1 <= float(values["--coef0"]) <= 1

    # each trial's training_f1_score, as mlflow.autolog() logged it into the trial's own MLflow run
    with sqlite3.connect(scratch / "mlruns.db") as store:
        logged = store.execute(
            "SELECT runs.name, metrics.value FROM metrics JOIN runs ON runs.run_uuid = metrics.run_uuid"
            " WHERE metrics.key = 'training_f1_score' AND runs.name LIKE 'sweep_step.trial_%'"
        ).fetchall()
    scores = dict(logged)
    assert sorted(scores) == trials
    table = log(run_dir, "sweep_step")
    for trial, score in scores.items():
        assert re.search(rf"^{re.escape(trial)} +training_f1_score = {score!r}( +<- best)?$", table, re.MULTILINE)
    (best,) = re.findall(r"^(\S+) +training_f1_score = .* <- best$", table, re.MULTILINE)
    assert scores[best] == min(scores.values())  # the objective: minimize training_f1_score (trials may tie)

    # the best trial's outputs are the sweep node's, and predict read them
    for output, file in (("model_output", "MLmodel"), ("test_data", "X_test.csv"), ("test_data", "y_test.csv")):
        assert (run_dir / "sweep_step" / output / file).read_bytes() == (run_dir / best / output / file).read_bytes()
    predict = shlex.split((run_dir / "predict_step" / "command.txt").read_text())
    assert predict[2:6] == [
        "--model",
        str(run_dir / "sweep_step" / "model_output"),
        "--test_data",
        str(run_dir / "sweep_step" / "test_data"),
    ]
    with (run_dir / "predict_step" / "predict_result" / "predict_result.csv").open() as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == 30  # 20 % of iris' 150 rows
    assert {row["species"] for row in predictions} <= IRIS_SPECIES
    assert {row["predict"] for row in predictions} <= IRIS_SPECIES
    assert summary["outputs"] == {}  # the pipeline declares none

    # what autolog logged of each trial, in the folder's mlartifacts/ beside its mlruns.db, not in an mlruns/ of
    # MLflow's default artifact root (once written there)
    assert len(list((scratch / "mlartifacts").rglob("training_confusion_matrix.png"))) == len(trials)
    assert not (scratch / "mlruns").exists()


@pytest.mark.slow  # runs two pipelines up to their first step
def test_the_published_pipelines_that_cannot_run_here_stop_in_one_line(scratch: Path) -> None:
    outcomes = run(scratch, [*REFUSALS, *PANDAS_1_STEPS])
    for name, line in REFUSALS.items():  # before anything runs: no output, no run folder
        outcome = outcomes[name]
        assert (outcome.returncode, outcome.stdout, outcome.stderr, outcome.left) == (2, "", f"error: {line}\n", []), (
            name
        )

    for name, step in PANDAS_1_STEPS.items():  # their environment pins pandas 1.5; this one has pandas 2
        outcome = outcomes[name]
        run_dir = run_dir_of(outcome)
        step_log = run_dir / step / "step.log"
        assert outcome.returncode == 1, name
        assert outcome.stderr == (
            f"error: step '{step}' failed: AttributeError: 'DataFrame' object has no attribute 'append'"
            f" (its log: {step_log})\n"
        )
        assert re.search(r"/pandas/core/generic\.py\", line \d+, in __getattr__\n", step_log.read_text())
        summary = json.loads((run_dir / "run.json").read_text())
        assert (summary["status"], summary["steps"][0]["name"], summary["steps"][0]["status"]) == (
            "failed",
            step,
            "failed",
        )
        assert len(summary["steps"]) == 1  # nothing after it started
        kept = sorted(path.name for path in (run_dir / step).iterdir())
        assert kept == [".code", "command.txt", "step.log"]  # its code copy and log, to look into; no output
