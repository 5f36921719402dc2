"""Pipeline jobs written as YAML files, as users write them and Azure ML publishes them, run by the local runner.

The fixtures in data/pipelines/ are our own, with the shapes of the pipelines in Azure/azureml-examples
(cli/jobs/pipelines-with-components): nodes with and without code, inputs or outputs; local files, folders
and MLTable folders declared relative to their file; a shell command; pipeline components used twice and
nested; a sweep; an asset run from a local substitute. What needs a workspace, a cluster or a program
missing here is refused in one line before anything runs. test_published_pipelines.py runs the published
examples themselves (data/third_party/azureml-examples).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from projects import DATA, command, copy_example, latest_run, no_step_host_left

from aml_pipeline_kit.job_file import check_job_file, checked_job, load_pipeline_job
from aml_pipeline_kit.plan import Binding, PlanError, Step, StepInput
from aml_pipeline_kit.shell import SHELL, environment_setup, needs_shell, shell_line
from aml_pipeline_kit.step_imports import steps_imports
from aml_pipeline_kit.step_io import read_only_inputs, written_input
from aml_pipeline_kit.sweep import SweepError, best_trial, trial_values

FIXTURES = DATA / "pipelines"
ENVIRONMENT_NOTE = "note: environments are not built locally"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture pipelines, copied: a test proves the steps leave their source folders as they were."""
    return Path(shutil.copytree(FIXTURES, tmp_path_factory.mktemp("jobs") / "pipelines"))


def seen(run_dir: Path, step: str, output: str = "report") -> dict:
    return json.loads((run_dir / step / output / "seen.json").read_text())


def run_job(capfd: pytest.CaptureFixture[str], project: Path, job: Path) -> tuple[Path, str]:
    result = command(capfd, project, "run", "--local", "--job", str(job))
    assert result.returncode == 0, result.stderr
    return project / "runs" / latest_run(project)["run_id"], result.stdout


# --- what runs -----------------------------------------------------------------------------------------------------


@pytest.mark.slow  # runs a pipeline
def test_a_pipeline_of_every_node_shape_runs(
    fixtures: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    run_dir, stdout = run_job(capfd, project, fixtures / "basic.yml")

    folder = seen(run_dir, "inspect_folder")  # a pipeline-level folder, a node-level file, literals
    assert folder["folder"] == str(fixtures / "data" / "folder")  # relative to the file that declares it
    assert folder["files"] == ["a.txt", "b.txt", "nested/c.txt"]
    assert folder["rows"] == (fixtures / "data" / "rows.csv").read_text()
    assert (folder["label"], folder["ratio"], folder["flag"]) == ("two words", "0.5", "False")  # as Azure ML writes
    assert folder["cwd"] == str(run_dir / "inspect_folder" / ".code")  # a fresh copy of the code
    assert folder["report_was_empty"]
    table = seen(run_dir, "inspect_table")  # an MLTable folder, mode download: a copy of the step's own
    assert table["folder"] == str(run_dir / "inspect_table" / ".inputs" / "folder")
    assert table["files"] == ["MLTable", "rows.csv"]
    assert (table["rows"], table["label"], table["ratio"], table["flag"]) == (None, "plain", "0.25", "True")

    shell = run_dir / "shell_step" / "out"  # no code, a shell command; the value reaches it whole
    assert (shell / "greeting.txt").read_text() == 'a $HOME; `echo pwned` "quoted" & more\n'
    assert (shell / "listing.txt").read_text() == "seen.json\n"
    assert (shell / "cwd.txt").read_text() == f"{run_dir / 'shell_step' / '.code'}\n"
    assert "hello from a step without inputs or outputs" in (run_dir / "hello" / "step.log").read_text()
    note = seen(run_dir, "read_note")  # a uri_file output: a file named as the output, in a folder made for it
    assert note["rows_path"] == str(run_dir / "shell_step" / "note" / "note")
    assert note["rows"] == "written by shell_step\n"

    assert latest_run(project)["outputs"] == {
        "report": str(run_dir / "inspect_folder" / "report"),
        "shell_out": str(shell),
    }
    assert "note: node 'hello': `pip install 'pyjokes==0.8.3' -q` not run" in stdout
    assert stdout.count(ENVIRONMENT_NOTE) == 1
    assert not list(fixtures.rglob("written-beside-the-script.txt"))  # the steps wrote into their copies only


@pytest.mark.slow  # runs a pipeline
def test_pipeline_components_are_flattened_with_their_bindings(
    fixtures: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    run_dir, _ = run_job(capfd, project, fixtures / "nested.yml")

    steps = [step["name"] for step in latest_run(project)["steps"]]
    assert steps == ["twice_a.inner.only", "twice_a.after", "twice_b.inner.only", "twice_b.after"]
    assert seen(run_dir, "twice_a.inner.only")["label"] == "first"  # bound by the outer node
    assert seen(run_dir, "twice_b.after")["label"] == "from-default"  # the pipeline component's default
    second_reads = seen(run_dir, "twice_b.inner.only")  # the first pipeline node's output, through two levels
    assert second_reads["folder"] == str(run_dir / "twice_a.after" / "report")
    assert second_reads["files"] == ["seen.json"]
    assert latest_run(project)["outputs"] == {
        "first": str(run_dir / "twice_a.after" / "report"),
        "second": str(run_dir / "twice_b.after" / "report"),
    }


@pytest.mark.slow  # runs a pipeline
def test_a_sweep_runs_its_trials_and_passes_on_the_best(
    fixtures: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    run_dir, stdout = run_job(capfd, project, fixtures / "sweep.yml")
    assert "note: node 'tune': limits max_concurrent_trials apply on Azure ML only" in stdout

    trials = [json.loads((run_dir / f"tune.trial_{i}" / "model" / "model.json").read_text()) for i in range(4)]
    assert [trial["x"] for trial in trials] == [0, 1, 2, 3]  # grid: every choice, in order
    assert json.loads((run_dir / "tune" / "model" / "model.json").read_text())["x"] == 2  # the least loss
    assert seen(run_dir, "use_best")["folder"] == str(run_dir / "tune" / "model")
    assert "tune.trial_2                             loss = 0.0  <- best" in (run_dir / "tune" / "step.log").read_text()


def sweep_failing_for(fixtures: Path, name: str, values: str) -> Path:
    """sweep.yml with x searched over ``values``, the trial of x = 2 (the best) failing."""
    text = (fixtures / "sweep.yml").read_text()
    text = text.replace("use_offset: false", "use_offset: false\n      fail_for: 2").replace("[0, 1, 2, 3]", values)
    path = fixtures / f"{name}.yml"
    path.write_text(text)
    return path


@pytest.mark.slow  # runs a pipeline
def test_a_failed_trial_is_left_out_and_the_best_of_the_rest_picked(
    fixtures: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    run_dir, stdout = run_job(capfd, project, sweep_failing_for(fixtures, "sweep-losing-one", "[0, 1, 2, 3]"))
    assert "tune.trial_2: failed (exit code 1), left out of its sweep" in stdout
    statuses = {step["name"]: step["status"] for step in latest_run(project)["steps"]}
    assert statuses["tune.trial_2"] == "failed"
    assert {statuses[f"tune.trial_{i}"] for i in (0, 1, 3)} == {"completed"}
    assert latest_run(project)["status"] == "completed"
    assert not (run_dir / "tune.trial_2" / "model").exists()
    assert json.loads((run_dir / "tune" / "model" / "model.json").read_text())["x"] == 1  # loss 1.5, tied with 3
    assert "1 of 4 trials failed" in (run_dir / "tune" / "step.log").read_text()


@pytest.mark.slow  # runs a pipeline
def test_a_sweep_whose_trials_all_fail_fails(
    fixtures: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    result = command(
        capfd, project, "run", "--local", "--job", str(sweep_failing_for(fixtures, "sweep-losing-all", "[2]"))
    )
    assert result.returncode == 1
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith("error: step 'tune' failed: every trial failed (1 of 1): there is no best trial")
    assert latest_run(project)["status"] == "failed"


WRITER = """
type: pipeline
settings: {{default_compute: azureml:cpu-cluster}}
jobs:
  writer:
    type: command
    component:
      type: command
      environment: {{image: python:3.11-slim}}
      inputs: {{folder: {{type: uri_folder}}}}
      command: echo more >> ${{{{inputs.folder}}}}/a.txt
    inputs:
      folder: {{type: uri_folder, path: {folder}{mode}}}
"""


@pytest.mark.slow  # runs pipelines
@pytest.mark.parametrize("mode", [None, "ro_mount", "download"])
def test_a_step_that_writes_into_a_read_only_input_fails(
    tmp_path: Path, mode: str | None, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    job = tmp_path / "writer.yml"
    job.write_text(WRITER.format(folder=folder, mode=f", mode: {mode}" if mode else ""))
    result = command(capfd, project, "run", "--local", "--job", str(job))
    if mode != "download":  # None: Azure ML's default for an input, a read-only mount; no input mode is writable
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines()[-1].startswith(
            "error: step 'writer' failed: its input 'folder' is mounted read-only on Azure ML (mode ro_mount), but the "
            f"step wrote into it: {folder / 'a.txt'} changed; write to an output, or give the input mode download"
        )
        assert latest_run(project)["status"] == "failed"
    else:
        assert result.returncode == 0, result.stderr
    assert (folder / "a.txt").read_text() == ("a\n" if mode == "download" else "a\nmore\n")  # detected, not stopped


def test_an_input_holding_the_runs_folder_is_not_checked_for_writes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    inputs = {
        name: StepInput(type="uri_folder", binding=Binding(value=str(tmp_path / folder)))
        for name, folder in (("data", "data"), ("project", ""))
    }
    step = Step("s", "s", "python s.py", None, inputs, {})
    values = {"data": str(tmp_path / "data"), "project": str(tmp_path)}
    read_only = read_only_inputs(step, values, tmp_path / "runs")
    assert read_only == {"data": (tmp_path / "data", {"a.txt": [1, (tmp_path / "data" / "a.txt").stat().st_mtime_ns]})}
    assert written_input(read_only) is None
    (tmp_path / "data" / "b.txt").write_text("b")
    assert f"{tmp_path / 'data' / 'b.txt'} was added" in written_input(read_only)


@pytest.mark.slow  # runs a pipeline
def test_a_data_asset_runs_from_its_local_substitute(
    fixtures: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    config = project / "config.yml"
    asset = fixtures / "data" / "asset"
    text = config.read_text().replace(
        "data_substitutes: {}", f'data_substitutes: {{"fixture-asset@latest": "{asset}"}}'
    )
    config.write_text(text)
    run_dir, _ = run_job(capfd, project, fixtures / "substitute.yml")
    assert seen(run_dir, "read_asset")["files"] == ["readme.txt"]


# --- what is refused, before anything runs ---------------------------------------------------------------------------

NODE = """
  {name}:
    type: command
    component: {component}
    inputs:
      folder: {folder}
{extra}"""
JOB = """
type: pipeline
settings:
  default_compute: azureml:cpu-cluster
{outputs}jobs:{node}
"""
INSPECT = "{fixtures}/components/inspect/inspect.yml"
# case -> (node name, what its component, input folder and extra keys are; the words the one line must hold)
REFUSED = {
    "registered component": (
        {"component": "azureml:my_component:1"},
        ["node 'step'", "'my_component:1'", "registered in an Azure ML workspace"],
    ),
    "registered data asset": (
        {"folder": "{type: uri_folder, path: azureml:my-data@latest}"},
        ["node 'step' input 'folder'", "'my-data@latest'", "registered data asset", "local.data_substitutes"],
    ),
    "datastore URI": (
        {"folder": "{type: uri_folder, path: azureml://datastores/workspaceblobstore/paths/data/}"},
        ["node 'step' input 'folder'", "azureml://datastores/workspaceblobstore/paths/data/", "needs a workspace"],
    ),
    "cloud storage": (
        {"folder": "{type: uri_file, path: wasbs://data@account.blob.core.windows.net/x.csv}"},
        ["node 'step' input 'folder'", "wasbs://data@account.blob.core.windows.net/x.csv", "cloud storage"],
    ),
    "missing local folder": (
        {"folder": "{type: uri_folder, path: ./data/missing}"},
        ["node 'step' input 'folder'", "data/missing does not exist"],
    ),
    "file for a folder": (
        {"folder": "{type: uri_folder, path: ./data/rows.csv}"},
        ["node 'step' input 'folder'", "rows.csv is not a folder"],
    ),
    "output to a datastore": (
        {
            "outputs": "outputs:\n  kept:\n    type: uri_folder\n    path: azureml://datastores/workspaceblobstore/paths/x\n"
        },
        ["pipeline output 'kept'", "azureml://datastores/workspaceblobstore/paths/x", "needs a workspace"],
    ),
    "distributed training": (
        {
            "extra": "    distribution: {type: pytorch, process_count_per_instance: 2}\n"
            "    resources: {instance_count: 2}"
        },
        ["node 'step'", "pytorch distributed training on 2 instance(s)", "Azure ML cluster"],
    ),
    "missing runtime": (
        {
            "component": '{type: command, command: "no-such-runtime-here train.R --data ${{inputs.folder}}", '
            "inputs: {folder: {type: uri_folder}}, environment: {image: r-base}}"
        },
        ["node 'step'", "'no-such-runtime-here'", "not installed here"],
    ),
    "package missing here": (
        {
            "component": '{type: command, command: "python x.py --f ${{inputs.folder}}", code: ./components/hello, '
            "inputs: {folder: {type: uri_folder}}, environment: {image: python, conda_file: {name: e, "
            "dependencies: [python=3.11, pip, {pip: [no-such-package-here==1.0]}]}}}"
        },
        ["node 'step'", "'no-such-package-here==1.0'", "lacks"],
    ),
}


def job_file(fixtures: Path, name: str, **parts: str) -> Path:
    values = {"component": INSPECT, "folder": "{type: uri_folder, path: ./data/folder}", "extra": "", **parts}
    node = NODE.format(name="step", **{key: value for key, value in values.items() if key != "outputs"})
    path = fixtures / f"refused-{name.replace(' ', '-')}.yml"
    path.write_text(JOB.format(outputs=parts.get("outputs", ""), node=node).replace("{fixtures}", str(fixtures)))
    return path


@pytest.mark.parametrize(("parts", "words"), REFUSED.values(), ids=REFUSED.keys())
def test_what_cannot_run_locally_is_refused_in_one_line(
    fixtures: Path, parts: dict[str, str], words: list[str], request: pytest.FixtureRequest
) -> None:
    path = job_file(fixtures, request.node.callspec.id, **parts)
    with pytest.raises(PlanError) as refusal:
        checked_job(path, {}, "project-env")
    message = str(refusal.value)
    assert "\n" not in message
    assert all(word in message for word in words), message


def test_a_refused_job_runs_nothing(fixtures: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    project = copy_example(tmp_path / "project")
    path = job_file(fixtures, "cli", folder="{type: uri_folder, path: azureml:my-data@latest}")
    result = command(capfd, project, "run", "--local", "--job", str(path))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: node 'step' input 'folder' reads 'my-data@latest'")
    assert not any((project / "runs").glob("2*"))
    assert no_step_host_left(project)
    checked = command(capfd, project, "check", "--job", str(path))
    assert checked.returncode == 1
    assert "[local-run] node 'step' input 'folder' reads 'my-data@latest'" in checked.stdout


def test_a_web_url_reaches_its_step_as_the_url_with_a_note(fixtures: Path) -> None:
    url = "https://example.com/data.csv"
    path = job_file(fixtures, "web-url", folder=f"{{type: uri_file, path: {url}}}")
    plan, _ = checked_job(path, {}, None)
    assert plan.step("step").inputs["folder"].binding.value == url  # as mode direct gives it: nothing downloaded
    # outside a project (no environment of its own), the plan also notes the environment the node names
    environment = "environments are not built locally: every step runs in this Python environment, not in "
    environment += "azureml://registries/azureml/environments/sklearn-1.5/labels/latest (1 step)"  # inspect.yml's
    assert plan.notes == (
        f"node 'step' input 'folder': {url} reaches the step as the URL itself, as mode direct would give it "
        "(Azure ML downloads it for the step; the local runner downloads nothing): for a local copy, map it to a "
        "local path under local.data_substitutes in config.yml",
        environment,
    )
    substituted, _ = checked_job(path, {url: fixtures / "data" / "rows.csv"}, None)
    assert substituted.step("step").inputs["folder"].binding.value == str(fixtures / "data" / "rows.csv")
    assert substituted.notes == (environment,)


def test_check_finds_a_command_that_uses_an_undeclared_input(fixtures: Path) -> None:
    component = (
        '{type: command, command: "python x.py --folder ${{inputs.folder}} --n ${{inputs.count}}", '
        "inputs: {folder: {type: uri_folder}}, environment: {image: python}}"
    )
    report = check_job_file(job_file(fixtures, "undeclared", component=component), {}, None)
    assert [finding.rule for finding in report.findings] == ["command-undeclared"]
    assert "${{inputs.count}}" in report.findings[0].message


def test_check_finds_a_flag_the_script_does_not_take(fixtures: Path) -> None:
    component = (
        "{type: command, code: ./components/inspect, environment: {image: python}, "
        'inputs: {folder: {type: uri_folder}}, command: "python inspect_inputs.py --folder ${{inputs.folder}} '
        '--lable x --ratio 1 --flag True --report ."}'
    )
    report = check_job_file(job_file(fixtures, "flag", component=component), {}, None)
    assert [(finding.rule, finding.message) for finding in report.findings] == [
        ("command-flag", "--lable is passed by the command but inspect_inputs.py's parser has no such option"),
        ("script-required", "inspect_inputs.py requires --label but the command never passes it"),
    ]
    assert "1 components, 0 bindings, 1 scripts" in report.summary()


# --- the pieces: shell quoting, sweep sampling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "shell"),
    [
        ("python train.py --data ${{inputs.data}} $[[--depth ${{inputs.depth}}]]", False),
        ("python train.py --name '${{inputs.name}}'", False),
        ("pip install x && python train.py", True),
        ("echo $TF_CONFIG", True),
        ("Rscript train.R --data ${{inputs.data}}", True),
        ("python -c 'print(1)'", True),
        ("python train.py > log.txt", True),
        ("python train.py --pattern '*.csv'", False),  # quoted: no glob
    ],
)
def test_which_commands_need_a_shell(command: str, shell: bool) -> None:
    assert needs_shell(command) is shell


@pytest.mark.parametrize("value", ["plain", "two words", "it's", 'a "b" $c `d` \\e', "; rm -rf x", "\n"])
def test_a_value_is_one_word_wherever_it_stands_in_a_shell_line(value: str) -> None:
    import subprocess

    command = "printf '%s|' ${{inputs.v}} \"${{inputs.v}}\" '${{inputs.v}}'"
    line = shell_line(command, lambda match: value)
    printed = subprocess.run([SHELL, "-c", line], capture_output=True, text=True, check=True).stdout
    assert printed == f"{value}|" * 3


def test_the_environment_setup_before_a_command_is_set_aside() -> None:
    command = "pip install 'mlflow<2.19' -q && conda install x && python train.py --a 1"
    assert environment_setup(command) == (
        "python train.py --a 1",
        ["pip install 'mlflow<2.19' -q", "conda install x"],
    )


def test_random_sampling_is_seeded_and_stays_in_range() -> None:
    space = {"c": ["uniform", [0.5, 0.9]], "kernel": ["choice", [["rbf", "linear"]]], "n": ["randint", [3]]}
    trials = trial_values(space, "random", 20, seed=7)
    assert trials == trial_values(space, "random", 20, seed=7)
    assert len(trials) == 20
    assert all(0.5 <= t["c"] <= 0.9 and t["kernel"] in {"rbf", "linear"} and t["n"] in {0, 1, 2} for t in trials)


def test_grid_sampling_takes_every_combination_of_choices() -> None:
    space = {"a": ["choice", [[1, 2]]], "b": ["choice", [["x", "y"]]]}
    assert trial_values(space, "grid", None) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    with pytest.raises(SweepError, match="grid sampling takes choice only"):
        trial_values({"c": ["uniform", [0, 1]]}, "grid", 3)


def test_the_best_trial_leaves_out_those_without_the_metric() -> None:
    metrics = {"t0": 0.5, "t1": None, "t2": 0.2, "t3": float("nan")}
    assert best_trial(metrics, "minimize") == "t2"
    assert best_trial(metrics, "maximize") == "t0"
    with pytest.raises(SweepError, match="no trial logged"):
        best_trial({"t0": None}, "minimize")


def test_parameters_set_a_job_files_inputs(fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(fixtures)  # a data input's value is a path from the current folder
    parameters = {"greeting": "hi", "source": "data/table"}
    plan, _ = checked_job(fixtures / "basic.yml", {}, None, parameters)
    assert plan.inputs == {"greeting": "hi", "source": str(fixtures / "data" / "table")}
    with pytest.raises(PlanError, match="has no input 'nope'; its inputs are: source, greeting"):
        checked_job(fixtures / "basic.yml", {}, None, {"nope": 1})
    with pytest.raises(PlanError, match=r"-p source: .*data/missing does not exist"):
        checked_job(fixtures / "basic.yml", {}, None, {"source": "data/missing"})


def test_code_the_step_host_cannot_read_is_not_preloaded(tmp_path: Path) -> None:
    (tmp_path / "old.py").write_text('print "Python 2"\n')
    trial = FIXTURES / "components" / "trial"
    assert steps_imports([tmp_path]) == []  # its step reports the error when it runs, not the host
    assert steps_imports([tmp_path, trial]) == steps_imports([trial]) != []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file"),
        ("type: command\ncommand: echo hi\nenvironment: {image: python}\n", "holds a command job"),
        ("type: pipeline\njobs: [unclosed\n", "job.yml: "),
    ],
    ids=["missing", "not a pipeline", "not YAML"],
)
def test_a_job_file_that_cannot_be_loaded_is_refused_in_one_line(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "job.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(PlanError, match=message) as refusal:
        load_pipeline_job(path)
    assert "\n" not in str(refusal.value)
