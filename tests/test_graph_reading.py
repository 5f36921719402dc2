"""How the machinery reads a built pipeline job, and the code it gives a step whose component shares code.

The serialised YAML's binding forms and a node that binds what its component does not declare (``check`` reads
the project's pipeline that way); a component's ``additional_includes``, Azure ML's way to share code between
component folders that are each uploaded alone: the local runner gives a step the very files azure-ai-ml uploads
(its own merge of code and includes, compared file by file), keys reuse on their content, and a missing include is
refused before anything runs. The machinery has no template variables: these run once here, on the default bake.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from machinery import AZURE_AI_ML_SCHEMA_WARNINGS, MACHINERY, PACKAGE, cli, copy_project, imported, latest_run

FIXTURES = Path(__file__).parent / "data" / "pipelines"
SHARED_BY = ("data_prep", "train", "score", "monitor")  # the default bake's components that include common/

pytestmark = AZURE_AI_ML_SCHEMA_WARNINGS


@pytest.fixture(scope="module")
def kit(default_project: Path) -> SimpleNamespace:
    """The default bake's graph reading, snapshot and pipeline modules, imported in this process."""
    machinery = dict.fromkeys(["aml_graph", "job_file", "local_runner", "plan", "snapshot"], MACHINERY)
    return imported(default_project, {**machinery, **dict.fromkeys(["pipeline", "settings"], PACKAGE)})


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """The fixture pipelines, copied: a test edits and removes the shared code."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "pipelines"))


# --- the serialised YAML ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {}),
        ({"path": "${{parent.inputs.alpha}}"}, {"pipeline_input": "alpha"}),
        ({"path": "${{parent.jobs.prep.outputs.data}}"}, {"node": "prep", "output": "data"}),
        ("${{parent.inputs.alpha}}", {"pipeline_input": "alpha"}),
        (0.5, {"value": 0.5}),
        ({"path": "./data.csv", "type": "uri_file"}, {"value": "./data.csv"}),
    ],
)
def test_binding_forms(kit: SimpleNamespace, raw: object, expected: dict[str, object]) -> None:
    assert kit.aml_graph.binding(raw) == kit.plan.Binding(**expected)


def test_a_node_that_binds_an_undeclared_input_is_refused(kit: SimpleNamespace, default_project: Path) -> None:
    settings = kit.settings.Settings.load(default_project)
    job = kit.pipeline.local_pipeline(settings, {"model_type": "ridge"})
    node = kit.aml_graph.command_nodes(kit.aml_graph.serialised(job))["train"]
    node["inputs"]["n_trees"] = {"path": "${{parent.inputs.alpha}}"}  # what a hand-edited job's YAML could hold
    with pytest.raises(kit.plan.PlanError, match="step 'train' binds 'n_trees'"):
        kit.aml_graph.step_from_node("train", node, default_project / "components" / "train")


# --- additional_includes -------------------------------------------------------------------------------------------


def uploaded_files(folder: Path) -> dict[str, object]:
    """Every file of a code snapshot, by relative name: its bytes, or a zip's names (its bytes hold time stamps)."""
    files: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            name = path.relative_to(folder).as_posix()
            files[name] = sorted(zipfile.ZipFile(path).namelist()) if path.suffix == ".zip" else path.read_bytes()
    return files


def shared_code_job(kit: SimpleNamespace, fixtures: Path) -> object:
    """The fixture job whose component includes a file, a folder and a folder zipped."""
    return kit.job_file.load_pipeline_job(fixtures / "includes.yml")


def test_the_local_snapshot_holds_what_azure_ai_ml_uploads(
    kit: SimpleNamespace, default_project: Path, fixtures: Path, tmp_path: Path
) -> None:
    settings = kit.settings.Settings.load(default_project)
    jobs = [
        kit.pipeline.local_pipeline(settings, {"model_type": "ridge"}),
        kit.pipeline.local_monitor_pipeline(settings, default_project / "components", settings.local_data_path),
        shared_code_job(kit, fixtures),
    ]
    snapshots = {}
    for job in jobs:
        plan = kit.aml_graph.plan_from_job(job)
        for name, node in job.jobs.items():
            ours = uploaded_files(kit.snapshot.build_snapshot(plan.step(name), tmp_path / f"{len(snapshots)}-{name}"))
            # azure-ai-ml's own merge of code and includes: what ml_client.components.create_or_update uploads
            includes = node.component._generate_additional_includes_obj()
            with includes.merge_local_code_and_additional_includes() as theirs:
                assert ours == uploaded_files(Path(theirs)), name
            snapshots[name] = ours
    assert all("argument_types.py" in snapshots[name] for name in SHARED_BY)
    assert "argument_types.py" not in snapshots["evaluate"]
    assert {"greeting.py", "helpers/shout.py", "helpers.zip", "use_shared.py"} <= set(snapshots["shared"])


def test_the_job_serialised_for_azure_carries_the_includes(kit: SimpleNamespace, default_project: Path) -> None:
    settings = kit.settings.Settings.load(default_project)
    training = kit.aml_graph.serialised(kit.pipeline.azure_pipeline(settings, {"model_type": "ridge"}))["jobs"]
    monitoring = kit.aml_graph.serialised(kit.pipeline.azure_monitor_pipeline(settings))["jobs"]
    common = default_project / "components" / "common" / "argument_types.py"
    assert training["train"]["component"]["additional_includes"] == ["../common/argument_types.py"]
    assert training["data_prep"]["component"]["additional_includes"] == [str(common)]  # command(): no spec folder
    assert "additional_includes" not in training["evaluate"]["component"]
    for name in ("score", "monitor"):
        assert monitoring[name]["component"]["additional_includes"] == ["../common/argument_types.py"]


def test_the_reuse_key_follows_what_the_includes_hold(kit: SimpleNamespace, tmp_path: Path) -> None:
    code, shared = tmp_path / "code", tmp_path / "shared.py"
    code.mkdir()
    (code / "step.py").write_text("import shared\n")
    shared.write_text("VALUE = 1\n")
    step = kit.plan.Step("step", "step", "python step.py", code, {}, {}, includes=(shared,))
    assert kit.plan.step_from_data(kit.plan.step_to_data(step)) == step  # as a cached plan keeps it
    key = kit.local_runner.step_key(step, {}, {})
    shared.touch()
    assert kit.local_runner.step_key(step, {}, {}) == key  # a time stamp counts for nothing
    shared.write_text("VALUE = 2\n")
    assert kit.local_runner.step_key(step, {}, {}) != key


@pytest.mark.slow  # runs a pipeline
def test_a_step_imports_its_includes_and_editing_one_runs_it_again(
    default_project: Path, fixtures: Path, tmp_path: Path
) -> None:
    project = copy_project(default_project, tmp_path / "project")
    job = fixtures / "includes.yml"
    first = cli(project, "run", "--local", "--job", str(job))
    assert first.returncode == 0, first.stderr
    run_dir = project / "runs" / latest_run(project)["run_id"]
    seen = json.loads((run_dir / "shared" / "report" / "seen.json").read_text())
    assert seen["greeting"] == "HELLO FROM THE LIBRARY!"
    assert {"greeting.py", "helpers/__init__.py", "helpers/shout.py", "helpers.zip", "use_shared.py"} <= set(
        seen["files"]
    )
    assert "helpers/shout.py" in seen["zipped"]
    assert sorted(path.name for path in (fixtures / "library").iterdir()) == ["greeting.py", "helpers"]  # untouched
    assert "shared: reused" in cli(project, "run", "--local", "--job", str(job)).stdout

    (fixtures / "library" / "greeting.py").write_text('GREETING = "hello again"\n')
    again = cli(project, "run", "--local", "--job", str(job))
    assert again.returncode == 0, again.stderr
    assert "shared: reused" not in again.stdout
    rerun = project / "runs" / latest_run(project)["run_id"] / "shared" / "report" / "seen.json"
    assert json.loads(rerun.read_text())["greeting"] == "HELLO AGAIN!"


def test_a_missing_include_of_a_job_file_is_refused_in_one_line(
    default_project: Path, fixtures: Path, tmp_path: Path
) -> None:
    project = copy_project(default_project, tmp_path / "project")
    (fixtures / "library" / "greeting.py").unlink()
    job = fixtures / "includes.yml"
    checked = cli(project, "check", "--job", str(job))
    assert checked.returncode == 1
    (line,) = [line for line in checked.stdout.splitlines() if "additional_includes" in line]
    message = "jobs.shared.component.additional_includes: Unable to find additional include ../../library/greeting.py"
    assert message in line
    refused = cli(project, "run", "--local", "--job", str(job))
    assert refused.returncode != 0
    assert "Unable to find additional include ../../library/greeting.py" in refused.stdout + refused.stderr
    assert not any((project / "runs").glob("2*"))


def test_a_missing_include_of_the_project_is_refused_before_a_run(default_project: Path, tmp_path: Path) -> None:
    project = copy_project(default_project, tmp_path / "project")
    (project / "components" / "common" / "argument_types.py").unlink()
    refused = cli(project, "run", "--local")
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if "Unable to find additional include" in line]
    assert sorted(line.split(":")[0] for line in lines) == [
        "components/data_prep/component.py",
        "components/monitor/monitor.yml",
        "components/score/score.yml",
        "components/train/train.yml",
    ]  # one line per component, naming its spec and the include
    assert all("argument_types.py" in line for line in lines)
    assert not any((project / "runs").glob("2*"))
