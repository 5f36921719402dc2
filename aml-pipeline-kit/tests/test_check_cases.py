"""``check`` against a scratch copy of the example broken in exactly one way: it fails naming the file and the rule,
and a run or a submission refuses to start. (The render's own tests keep that the project as rendered passes.)
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from projects import PACKAGE, copy_example, load_project

from aml_pipeline_kit import azure_ml, cli
from aml_pipeline_kit.local_runs import check_report
from aml_pipeline_kit.project import Project

PIPELINE_FILE = f"src/{PACKAGE}/pipeline.py"


@pytest.fixture
def project(tmp_path: Path, empty_store: Path) -> Project:
    """A scratch copy of the example, loaded (with a store ready: a run it refuses warms a step host)."""
    return load_project(copy_example(tmp_path / "project", empty_store))


# (file to edit, text to replace, replacement) -> (file the finding names, rule, what its message says)
BROKEN = {
    "a script renames a flag its command passes": (
        ("components/evaluate/evaluate.py", '"--report"', '"--reports"'),
        ("components/evaluate/evaluate.yml", "command-flag", "--report is passed by the command but evaluate.py's"),
    ),
    "a script computes its options (read through build_parser)": (
        ("components/train/train.py", '"--random-seed"', '"--seed"'),
        ("components/train/train.yml", "command-flag", "--random-seed is passed by the command but train.py's parser"),
    ),
    "a command stops passing an option its script requires": (
        ("components/evaluate/evaluate.yml", "--report ${{outputs.report}}", ""),
        ("components/evaluate/evaluate.py", "script-required", "evaluate.py requires --report"),
    ),
    "a command runs a script that is not there": (
        ("components/evaluate/evaluate.yml", "python evaluate.py", "python evaluation.py"),
        ("components/evaluate/evaluate.yml", "script-missing", "evaluation.py, which is not in evaluate/"),
    ),
    "a script does not parse": (
        ("components/evaluate/evaluate.py", "def scores(", "def scores(("),
        ("components/evaluate/evaluate.py", "script-syntax", ""),
    ),
    "data_prep reads a folder but the pipeline input is a file": (
        (
            "components/data_prep/component.py",
            '"input_data": Input(type="uri_file"',
            '"input_data": Input(type="uri_folder"',
        ),
        ("components/data_prep/component.py", "binding-type", "input_data is uri_folder but reads pipeline input"),
    ),
    "train reads a file but data_prep writes a folder": (
        ("components/train/train.yml", "prepped_data:\n    type: uri_folder", "prepped_data:\n    type: uri_file"),
        ("components/train/train.yml", "binding-type", "which is uri_folder"),
    ),
    "the monitoring schedule's recurrence is one Azure ML does not know": (
        ("config.yml", "frequency: day", "frequency: fortnight"),
        ("aml/monitor-schedule.yml", "spec-load", "'fortnight' passed is not in set"),
    ),
    "a monitoring threshold is out of its input's range": (
        ("config.yml", "    psi: 0.2", "    psi: -0.2"),
        ("config.yml", "input-value", "psi: -0.2 is below the minimum 0, for monitor.inputs.psi"),
    ),
    "the environment lacks a package the scripts import": (
        ("aml/conda.yml", "      - scikit-learn==1.7.2\n", ""),
        ("aml/conda.yml", "env-missing", "sklearn is imported by the scripts in"),
    ),
    "the environment's base image is latest": (
        ("aml/environment.yml", "-ubuntu22.04:20250701.v1", "-ubuntu22.04:latest"),
        ("aml/environment.yml", "env-image", "openmpi4.1.0-ubuntu22.04:latest is not pinned"),
    ),
    "the environment's base image has no tag": (
        ("aml/environment.yml", "-ubuntu22.04:20250701.v1", "-ubuntu22.04"),
        ("aml/environment.yml", "env-image", "openmpi4.1.0-ubuntu22.04 is not pinned"),
    ),
    "the environment does not pin a package": (
        ("aml/conda.yml", "pandas==2.3.3", "pandas>=2.3"),
        ("aml/conda.yml", "env-unpinned", "pandas>=2.3"),
    ),
    "a command uses an undeclared input": (
        (
            "components/evaluate/evaluate.yml",
            "--report ${{outputs.report}}",
            "--report ${{outputs.report}} --y ${{inputs.y}}",
        ),
        ("components/evaluate/evaluate.yml", "command-undeclared", "${{inputs.y}}, which the component does not"),
    ),
    "a component declares an input its command never uses": (
        ("components/evaluate/evaluate.yml", "outputs:\n", "  extra:\n    type: string\n    default: x\noutputs:\n"),
        ("components/evaluate/evaluate.yml", "command-unused", "input 'extra' is declared but the command never"),
    ),
    "an optional input is used outside $[[...]]": (
        ("components/train/train.yml", "$[[--max-depth ${{inputs.max_depth}}]]", "--max-depth ${{inputs.max_depth}}"),
        ("components/train/train.yml", "command-optional", "optional input 'max_depth'"),
    ),
    "azure-ai-ml's validation: a required input no step binds": (
        ("components/evaluate/evaluate.yml", "outputs:\n", "  extra:\n    type: string\noutputs:\n"),
        ("components/evaluate/evaluate.yml", "aml-validate", "jobs.evaluate.inputs.extra"),
    ),
    "pipeline.py wires an output the component renamed": (
        ("components/data_prep/component.py", 'outputs={"prepped_data"', 'outputs={"prepared"'),
        (PIPELINE_FILE, "pipeline-build", "unexpected attribute 'prepped_data'"),
    ),
    "a string input filled in outside quotes": (
        (
            "components/data_prep/component.py",
            "--target-column '${{inputs.target_column}}'",
            "--target-column ${{inputs.target_column}}",
        ),
        ("components/data_prep/component.py", "command-quoting", "string input 'target_column' is filled into"),
    ),
    "a data input filled in outside quotes": (
        (
            "components/data_prep/component.py",
            "--input-data '${{inputs.input_data}}'",
            "--input-data ${{inputs.input_data}}",
        ),
        ("components/data_prep/component.py", "command-quoting", "data input 'input_data' is filled into the command"),
    ),
    "the data file's name holds a single quote": (
        ("aml/data.yml", '"../data/diabetes.csv"', '"../data/it\'s.csv"'),
        ("data/it's.csv", "input-value", 'input_data: its file name "it\'s.csv" holds a single quote, which no'),
    ),
    "config.yml sets a parameter to a binding": (
        ("config.yml", '"diabetes-blood-pressure-model"', '"${{outputs.decision}}"'),
        (
            "config.yml",
            "input-value",
            "registered_model_name: '${{outputs.decision}}' holds ${{...}}, which Azure ML reads as a binding to an "
            "input or output, not as text, for register.inputs.model_name",
        ),
    ),
    "config.yml names the registered model as Azure ML cannot": (
        ("config.yml", '"diabetes-blood-pressure-model"', '"a b/c"'),
        (
            "config.yml",
            "model-name",
            "azure.registered_model_name: 'a b/c' is invalid: must be 1-255 letters, digits, underscores or hyphens, "
            "starting with a letter or digit",
        ),
    ),
    "a string input filled in inside double quotes": (
        ("components/register/register.yml", "'${{inputs.model_name}}'", '"${{inputs.model_name}}"'),
        ("components/register/register.yml", "command-quoting", "string input 'model_name' is filled into"),
    ),
    "config.yml sets a value its input refuses": (
        ("config.yml", "alpha: 1.0", "alpha: -1.0"),
        ("config.yml", "input-value", "alpha: -1.0 is below the minimum 0, for train"),
    ),
    "config.yml sets a seed numpy cannot take": (
        ("config.yml", "random_seed: 42", "random_seed: 4294967296"),
        ("config.yml", "input-value", "random_seed: 4294967296 is above the maximum"),
    ),
    "bayesian sampling with the default early termination, which Azure ML's Bayesian sampling refuses": (
        ("config.yml", "  sampling: random", "  sampling: bayesian"),
        (
            "config.yml",
            "tuning-settings",
            "tuning.early_termination.policy is 'bandit' with tuning.sampling 'bayesian'",
        ),
    ),
    "the scoring entry script defines no run()": (
        ("components/score/score.py", "def run(", "def score_mini_batch("),
        ("components/score/score.py", "parallel-entry", "score.py defines no run(), which Azure ML's parallel job"),
    ),
    "scoring's program_arguments pass a flag its entry script does not take": (
        ("components/score/component.py", '"--model ${{inputs.model}}', '"--model-dir ${{inputs.model}}'),
        ("components/score/component.py", "command-flag", "--model-dir is passed by the command but score.py's"),
    ),
    "scoring's entry script is not in its code folder": (
        ("components/score/component.py", 'entry_script="score.py"', 'entry_script="scoring.py"'),
        ("components/score/component.py", "script-missing", "entry_script is scoring.py, which is not in score/"),
    ),
    "scoring's parallel node has a setting Azure ML refuses": (
        ("components/score/component.py", 'logging_level="INFO"', 'logging_level="LOUD"'),
        (PIPELINE_FILE, "parallel-node", "node 'score': logging_level is 'LOUD'; it must be one of"),
    ),
    "an AML spec that azure-ai-ml cannot load": (
        ("aml/compute.yml", "type: amlcompute", "type: amlcomputer"),
        ("aml/compute.yml", "spec-load", "Unknown compute type"),
    ),
}


def edit(project: Project, relative: str, old: str, new: str) -> None:
    path = project.root / relative
    text = path.read_text()
    assert old in text, f"{relative} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))


def finding_lines(project: Project) -> list[str]:
    """The report's finding lines; the last line is the summary."""
    lines = check_report(project).text().splitlines()
    assert re.match(r"^check: \d+ findings? \(", lines[-1]), lines[-1]
    return lines[:-1]


def assert_found(lines: list[str], file: str, rule: str, message: str) -> None:
    """A finding on ``file`` (relative to the project), by ``rule``, whose message says ``message``."""
    found = [line for line in lines if re.match(rf"^{re.escape(file)}(:\d+)?: \[{rule}\] ", line)]
    assert any(message in line for line in found), f"no [{rule}] on {file} saying {message!r} in:\n" + "\n".join(lines)


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_contract_is_found(project: Project, case: str) -> None:
    (file, old, new), (named_file, rule, message) = BROKEN[case]
    edit(project, file, old, new)
    reloaded = load_project(project.root)  # config.yml read anew
    assert_found(finding_lines(reloaded), named_file, rule, message)


def tamper(monkeypatch: pytest.MonkeyPatch, project: Project, edit: Callable[[dict], None]) -> None:
    """Let ``edit`` change the built training job's serialised YAML: wiring that pipeline.py's dsl itself would
    refuse."""
    build = project.pipeline("training")

    def tampered(*args: Any, **kwargs: Any) -> Any:
        job = build(*args, **kwargs)
        dump = job.dump

        def dump_edited(stream: io.StringIO) -> None:
            buffer = io.StringIO()
            dump(buffer)
            document = yaml.safe_load(buffer.getvalue())
            edit(document)
            stream.write(yaml.safe_dump(document))

        job.dump = dump_edited
        return job

    monkeypatch.setitem(project.pipelines, "training", tampered)


def bound_inputs(document: dict) -> list[dict]:
    """Every step's inputs, whatever the steps are called (they differ between model choices)."""
    return [node.get("inputs") or {} for node in document["jobs"].values()]


@pytest.mark.parametrize(
    ("source", "replacement", "message"),
    [
        ("${{parent.inputs.alpha}}", "${{parent.inputs.ridge_alpha}}", "pipeline input 'ridge_alpha'"),
        (
            "${{parent.jobs.data_prep.outputs.prepped_data}}",
            "${{parent.jobs.data_prep.outputs.prepped}}",
            "data_prep.outputs.prepped",
        ),
        (
            "${{parent.jobs.data_prep.outputs.prepped_data}}",
            "${{parent.jobs.prep.outputs.prepped_data}}",
            "prep.outputs.prepped_data",
        ),
    ],
)
def test_a_binding_to_nothing_is_found(
    project: Project, monkeypatch: pytest.MonkeyPatch, source: str, replacement: str, message: str
) -> None:
    def rebind(document: dict) -> None:
        for inputs in bound_inputs(document):
            for bound in inputs.values():
                if isinstance(bound, dict) and bound.get("path") == source:
                    bound["path"] = replacement

    tamper(monkeypatch, project, rebind)
    assert_found(finding_lines(project), PIPELINE_FILE, "binding-source", f"reads {message}, which does not exist")


def test_a_binding_of_an_undeclared_input_is_found(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    def rename(document: dict) -> None:
        for inputs in bound_inputs(document):
            if "alpha" in inputs:
                inputs["n_trees"] = inputs.pop("alpha")

    tamper(monkeypatch, project, rename)
    assert_found(finding_lines(project), PIPELINE_FILE, "binding-target", "binds 'n_trees', which its component")


def break_a_flag(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project with a finding, and the current folder: where the command finds it."""
    edit(project, *BROKEN["a script renames a flag its command passes"][0])
    monkeypatch.chdir(project.root)


def test_run_refuses_to_start_on_a_finding(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    break_a_flag(project, monkeypatch)
    assert cli.main(["run", "--local"]) == 1
    error = capsys.readouterr().err
    assert "[command-flag] --report is passed by the command" in error
    assert "not started" in error
    assert not project.local_runs_dir.exists()


def test_submit_refuses_before_contacting_azure(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    break_a_flag(project, monkeypatch)

    def no_client(project: Project) -> None:
        raise AssertionError("submit contacted Azure ML despite a finding")

    monkeypatch.setattr(azure_ml, "ml_client", no_client)
    assert cli.main(["submit", "--no-stream"]) == 1
    assert "[command-flag]" in capsys.readouterr().err
