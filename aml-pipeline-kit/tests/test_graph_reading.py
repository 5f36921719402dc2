"""How the engine reads a built pipeline job, and the code it gives a step whose component shares code.

The serialised YAML's binding forms and a node that binds what its component does not declare (``check`` reads
the project's pipeline that way); a component's ``additional_includes``, Azure ML's way to share code between
component folders that are each uploaded alone: the local runner gives a step the very files azure-ai-ml uploads
(its own merge of code and includes, compared file by file), keys reuse on their content, and a missing include is
refused before anything runs. The project's graphs are the example's (projects.py).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from projects import DATA, command, copy_example, latest_run, load_project

from aml_pipeline_kit import aml_graph, job_file, local_runner, plan, snapshot
from aml_pipeline_kit.azure_ml import training_job
from aml_pipeline_kit.azure_monitoring import monitoring_job
from aml_pipeline_kit.local_runs import local_job
from aml_pipeline_kit.project import Project

FIXTURES = DATA / "pipelines"
SHARED_BY = ("data_prep", "train", "monitor")  # the example's components that include common/


@pytest.fixture(scope="module")
def project(example: Path) -> Project:
    """The example, loaded in this process."""
    return load_project(example)


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
def test_binding_forms(raw: object, expected: dict[str, object]) -> None:
    assert aml_graph.binding(raw) == plan.Binding(**expected)


def test_a_node_that_binds_an_undeclared_input_is_refused(project: Project) -> None:
    job = local_job(project, "training", {"model_type": "ridge"})
    node = aml_graph.command_nodes(aml_graph.serialised(job))["train"]
    node["inputs"]["n_trees"] = {"path": "${{parent.inputs.alpha}}"}  # what a hand-edited job's YAML could hold
    with pytest.raises(plan.PlanError, match="step 'train' binds 'n_trees'"):
        aml_graph.step_from_node("train", node, project.root / "components" / "train")


# --- additional_includes -------------------------------------------------------------------------------------------


def file_content(path: Path) -> object:
    """A file's bytes, or a zip's names (its bytes hold time stamps)."""
    return sorted(zipfile.ZipFile(path).namelist()) if path.suffix == ".zip" else path.read_bytes()


def uploaded_files(folder: Path) -> dict[str, object]:
    """Every file of a code snapshot, by relative name: its content."""
    return {
        path.relative_to(folder).as_posix(): file_content(path) for path in sorted(folder.rglob("*")) if path.is_file()
    }


def azure_upload(component: object) -> dict[str, object]:
    """What ``ml_client.components.create_or_update`` uploads of a component's code: azure-ai-ml's own listing of
    its code (merged with its additional includes), with its ignore file, read before the merge is cleaned up."""
    from azure.ai.ml._utils._asset_utils import get_upload_files_from_folder

    with component._build_code() as code:
        folder = Path(code.base_path, code.path).resolve()  # as _check_and_upload_path resolves it
        listing = get_upload_files_from_folder(folder, ignore_file=code._ignore_file)
        return {name: file_content(Path(source)) for source, name in listing}


def shared_code_job(fixtures: Path) -> object:
    """The fixture job whose component includes a file, a folder and a folder zipped."""
    return job_file.load_pipeline_job(fixtures / "includes.yml")


def test_the_local_snapshot_holds_what_azure_ai_ml_uploads(project: Project, fixtures: Path, tmp_path: Path) -> None:
    jobs = [
        local_job(project, "training", {"model_type": "ridge"}),
        local_job(project, "monitoring", model=project.root / "components"),
        shared_code_job(fixtures),
    ]
    snapshots = {}
    for job in jobs:
        built = aml_graph.plan_from_job(job)
        for name, node in job.jobs.items():
            ours = uploaded_files(snapshot.build_snapshot(built.step(name), tmp_path / f"{len(snapshots)}-{name}"))
            assert ours == azure_upload(node.component), name
            snapshots[name] = ours
    assert all("argument_types.py" in snapshots[name] for name in SHARED_BY)
    assert "argument_types.py" not in snapshots["evaluate"]
    assert {"greeting.py", "helpers/shout.py", "helpers.zip", "use_shared.py"} <= set(snapshots["shared"])


CODE_AT_THE_TOP = """\
type: command
code: ../..
environment:
  image: python:3.11-slim
command: python keep.py
"""


def code_tree(root: Path) -> Path:
    """A project whose components take its whole folder as their code (``code: ../..``), one of them with additional
    includes: ignore files at the top, below it and in an include; links to a file and a folder outside; earlier
    runs, caches, and a folder zipped. Its pipeline job file."""
    files = {
        "project/.amlignore": "runs/\n*.log\n!keep.log\n",  # wins over .gitignore
        "project/.gitignore": "*.py\n",
        "project/keep.py": "print('kept')\n",
        "project/keep.log": "kept: brought back by !\n",
        "project/noise.log": "left out\n",
        "project/runs/20260101-000000-abcdef/model/model.bin": "earlier runs\n",
        "project/sub/.gitignore": "*.tmp\n",  # a folder's own: read by the merge (includes) only
        "project/sub/scratch.tmp": "merge leaves it out\n",
        "project/sub/module.py": "VALUE = 1\n",
        "project/sub/__pycache__/module.cpython-311.pyc": "cache\n",
        "project/components/whole/whole.yml": CODE_AT_THE_TOP,
        "project/components/merged/merged.yml": CODE_AT_THE_TOP
        + "additional_includes:\n  - ../../../library/shared.py\n  - ../../../library/package\n"
        + "  - ../../../library/zipped.zip\n",
        "project/job.yml": "type: pipeline\nsettings:\n  default_compute: azureml:cpu-cluster\njobs:\n"
        + "  whole:\n    type: command\n    component: ./components/whole/whole.yml\n"
        + "  merged:\n    type: command\n    component: ./components/merged/merged.yml\n",
        "library/shared.py": "SHARED = 1\n",
        "library/package/.gitignore": "*.bak\n",
        "library/package/module.py": "PACKAGED = 1\n",
        "library/package/module.bak": "its own ignore file leaves it out\n",
        "library/zipped/inner.py": "ZIPPED = 1\n",
        "library/zipped/inner.log": "the code's ignore file leaves it out of the zip\n",
        "elsewhere/linked.txt": "reached through a link to a file\n",
        "elsewhere/folder/inside.txt": "reached through a link to a folder\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "project" / "linked.txt").symlink_to(root / "elsewhere" / "linked.txt")
    (root / "project" / "folder").symlink_to(root / "elsewhere" / "folder", target_is_directory=True)
    return root / "project" / "job.yml"


def test_the_snapshot_honours_ignore_files_and_links_as_azure_ai_ml_does(tmp_path: Path) -> None:
    """A component with `code: ../..` once copied the project's runs/ into its own snapshot: 14 GB in 107 s."""
    job = job_file.load_pipeline_job(code_tree(tmp_path))
    built = aml_graph.plan_from_job(job)
    snapshots = {}
    for name, node in job.jobs.items():
        snapshots[name] = uploaded_files(snapshot.build_snapshot(built.step(name), tmp_path / "snapshots" / name))
        assert snapshots[name] == azure_upload(node.component), name
    whole, merged = set(snapshots["whole"]), set(snapshots["merged"])
    assert {"keep.py", "keep.log", "linked.txt", "folder/inside.txt", "sub/scratch.tmp", ".gitignore"} <= whole
    assert not {name for name in whole | merged if name.startswith("runs/") or name.endswith((".pyc", "noise.log"))}
    assert {"shared.py", "package/module.py", "zipped.zip"} <= merged
    assert not {"sub/scratch.tmp", "package/module.bak"} & merged
    assert snapshots["merged"]["zipped.zip"] == ["zipped/", "zipped/inner.py"]


def test_the_job_serialised_for_azure_carries_the_includes(project: Project) -> None:
    training = aml_graph.serialised(training_job(project, {"model_type": "ridge"}))["jobs"]
    batch = project.setting("monitoring", "batch_path")
    monitoring = aml_graph.serialised(monitoring_job(project, batch))["jobs"]
    common = project.root / "components" / "common" / "argument_types.py"
    assert training["train"]["component"]["additional_includes"] == ["../common/argument_types.py"]
    assert training["data_prep"]["component"]["additional_includes"] == [str(common)]  # command(): no spec folder
    assert "additional_includes" not in training["evaluate"]["component"]
    assert monitoring["monitor"]["component"]["additional_includes"] == [
        "../common/argument_types.py",
        "../score/score.py",
    ]
    assert "additional_includes" not in monitoring["score"]["component"]  # a parallel step: its entry script alone


def test_the_reuse_key_follows_what_the_includes_hold(tmp_path: Path) -> None:
    code, shared = tmp_path / "code", tmp_path / "shared.py"
    code.mkdir()
    (code / "step.py").write_text("import shared\n")
    shared.write_text("VALUE = 1\n")
    step = plan.Step("step", "step", "python step.py", code, {}, {}, includes=(shared,))
    assert plan.step_from_data(plan.step_to_data(step)) == step  # as a cached plan keeps it

    def key() -> str:
        return local_runner.step_key(step, {}, {}, snapshot.snapshot_files(step))

    first = key()
    shared.touch()
    assert key() == first  # a time stamp counts for nothing
    shared.write_text("VALUE = 2\n")
    assert key() != first


@pytest.mark.slow  # runs a pipeline
def test_a_step_imports_its_includes_and_editing_one_runs_it_again(
    fixtures: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    job = fixtures / "includes.yml"
    first = command(capfd, project, "run", "--local", "--job", str(job))
    assert first.returncode == 0, first.stderr
    run_dir = project / "runs" / latest_run(project)["run_id"]
    seen = json.loads((run_dir / "shared" / "report" / "seen.json").read_text())
    assert seen["greeting"] == "HELLO FROM THE LIBRARY!"
    assert {"greeting.py", "helpers/__init__.py", "helpers/shout.py", "helpers.zip", "use_shared.py"} <= set(
        seen["files"]
    )
    assert "helpers/shout.py" in seen["zipped"]
    assert sorted(path.name for path in (fixtures / "library").iterdir()) == ["greeting.py", "helpers"]  # untouched
    assert "shared: reused" in command(capfd, project, "run", "--local", "--job", str(job)).stdout

    (fixtures / "library" / "greeting.py").write_text('GREETING = "hello again"\n')
    again = command(capfd, project, "run", "--local", "--job", str(job))
    assert again.returncode == 0, again.stderr
    assert "shared: reused" not in again.stdout
    rerun = project / "runs" / latest_run(project)["run_id"] / "shared" / "report" / "seen.json"
    assert json.loads(rerun.read_text())["greeting"] == "HELLO AGAIN!"


def test_a_missing_include_of_a_job_file_is_refused_in_one_line(
    fixtures: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project")
    (fixtures / "library" / "greeting.py").unlink()
    job = fixtures / "includes.yml"
    checked = command(capfd, project, "check", "--job", str(job))
    assert checked.returncode == 1
    (line,) = [line for line in checked.stdout.splitlines() if "additional_includes" in line]
    message = "jobs.shared.component.additional_includes: Unable to find additional include ../../library/greeting.py"
    assert message in line
    refused = command(capfd, project, "run", "--local", "--job", str(job))
    assert refused.returncode != 0
    assert "Unable to find additional include ../../library/greeting.py" in refused.stdout + refused.stderr
    assert not any((project / "runs").glob("2*"))


def test_a_missing_include_of_the_project_is_refused_before_a_run(
    tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = load_project(copy_example(tmp_path / "project", empty_store)).root
    (project / "components" / "common" / "argument_types.py").unlink()
    refused = command(capfd, project, "run", "--local")
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if "Unable to find additional include" in line]
    assert sorted(line.split(":")[0] for line in lines) == [
        "components/data_prep/component.py",
        "components/monitor/monitor.yml",
        "components/train/train.yml",
    ]  # one line per component, naming its spec and the include
    assert all("argument_types.py" in line for line in lines)
    assert not any((project / "runs").glob("2*"))
