"""The project convention (project.py): where the engine finds a project (``AML_PIPELINE_KIT_PROJECT``, else the
nearest folder at or above the current one holding config.yml and components/), how the project names its pipelines
(``[tool.aml-pipeline-kit] pipelines`` in pyproject.toml, ``register_pipelines(project)`` in that module; every
mistake in one line), that ``check`` builds every pipeline it registers, and the local paths config.yml decides
(``aml-pipeline-kit show``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from projects import PACKAGE, PROG, cli, copy_example, load_project

from aml_pipeline_kit.cli import main
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runs import check_report, checked_graphs, local_job
from aml_pipeline_kit.project import ROOT_VARIABLE, Project, find_project_root

PIPELINE_MODULE = f"src/{PACKAGE}/pipeline.py"
REGISTERED = 'return {"training": training_pipeline, "tuning": tuning, "scoring": scoring, "monitoring": monitoring}'


def make_project(folder: Path) -> Path:
    (folder / "components" / "train").mkdir(parents=True)
    (folder / "config.yml").write_text("target_column: y\n")
    return folder


def edited(root: Path, relative: str, old: str, new: str) -> Path:
    path = root / relative
    assert old in path.read_text(), f"{relative} no longer holds {old!r}: update this test"
    path.write_text(path.read_text().replace(old, new))
    return root


# --- where the project is -----------------------------------------------------------------------------------------


def test_the_project_is_found_at_or_above_the_current_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    assert find_project_root(project, {}) == project
    assert find_project_root(project / "components" / "train", {}) == project


def test_the_environment_variable_wins(tmp_path: Path) -> None:
    project, other = make_project(tmp_path / "project"), make_project(tmp_path / "other")
    assert find_project_root(project, {ROOT_VARIABLE: str(other)}) == other


def test_outside_any_project_loading_says_where_it_looked_and_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_project_root(tmp_path, {}) is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ROOT_VARIABLE, raising=False)
    message = (
        f"{tmp_path} is not a project (no config.yml and components/ here or above): run from within one, "
        f"or set {ROOT_VARIABLE} to its folder"
    )
    for load in (Project.load, lambda: Project.load(tmp_path)):
        with pytest.raises(SettingsError) as refusal:
            load()
        assert str(refusal.value) == message


def test_the_command_finds_the_project_from_within_it_or_by_the_variable(example: Path, tmp_path: Path) -> None:
    expected = f"sqlite:///{example}/mlruns.db\n"
    inside = cli(example / "components" / "train", "show", "tracking-uri", timeout=60)
    assert (inside.returncode, inside.stdout, inside.stderr) == (0, expected, "")
    pointed = cli(tmp_path, "show", "tracking-uri", env={ROOT_VARIABLE: str(example)}, timeout=60)
    assert (pointed.returncode, pointed.stdout, pointed.stderr) == (0, expected, "")
    outside = cli(tmp_path, "show", "tracking-uri", timeout=60)
    assert outside.returncode == 2
    assert outside.stderr == f"error: {tmp_path} is not a project (no config.yml and components/ here or above): " + (
        f"run from within one, or set {ROOT_VARIABLE} to its folder\n"
    )


# --- the local paths config.yml decides ------------------------------------------------------------------------------


def test_local_outputs_follow_config_yml(example: Path, tmp_path: Path) -> None:
    config = load_project(example).config
    local = {**config["local"], "runs_dir": "scratch/runs", "tracking_uri": "sqlite:///stores/tracking.db"}
    project = Project(tmp_path, {**config, "local": local}, {}, {}, f"{PACKAGE}.pipeline")
    assert project.local_runs_dir == tmp_path / "scratch" / "runs"
    assert project.local_outputs() == [
        tmp_path / "scratch" / "runs",
        tmp_path / "mlartifacts",
        tmp_path / "stores" / "tracking.db",
        tmp_path / "stores" / "tracking.db.lock",
    ]
    server = Project(tmp_path, {**config, "local": {**local, "tracking_uri": "http://127.0.0.1:5000"}}, {}, {}, "x")
    assert server.local_outputs() == [tmp_path / "scratch" / "runs", tmp_path / "mlartifacts"]  # not ours to delete


def test_show_prints_the_paths_config_yml_names_one_absolute_path_a_line(tmp_path: Path) -> None:
    """What the project's Makefile and CI ask, so that they name no path config.yml decides."""
    project = edited(copy_example(tmp_path / "project"), "config.yml", "runs_dir: runs", 'runs_dir: "my runs"')
    shown = {what: cli(project, "show", what, timeout=60) for what in ("runs-dir", "tracking-uri", "local-outputs")}
    assert all((result.returncode, result.stderr) == (0, "") for result in shown.values())
    assert shown["runs-dir"].stdout == f"{project / 'my runs'}\n"
    assert shown["tracking-uri"].stdout == f"sqlite:///{project / 'mlruns.db'}\n"
    outputs = [project / "my runs", project / "mlartifacts", project / "mlruns.db", project / "mlruns.db.lock"]
    assert shown["local-outputs"].stdout.splitlines() == [str(path) for path in outputs]


def test_show_refuses_what_it_does_not_know_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main(["show", "runs"])
    assert exit_code.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    choices = ", ".join(
        f"'?{choice}'?"
        for choice in ("runs-dir", "tracking-uri", "local-outputs", "sample-request", "sample-request-mlflow")
    )  # argparse quotes them in some Pythons
    expected = rf"{PROG} show: error: argument what: invalid choice: 'runs' \(choose from {choices}\) \(see {PROG} .*\)"
    assert re.fullmatch(expected, line), line


# --- how a project names its pipelines ------------------------------------------------------------------------------

TOOL_TABLE = f'[tool.aml-pipeline-kit]\npipelines = "{PACKAGE}.pipeline"\n'
# what is wrong with the project's convention -> (how to make it so, the one line that says what to correct)
CONVENTION: dict[str, tuple[Callable[[Path], object], str]] = {
    "no pyproject.toml": (
        lambda root: (root / "pyproject.toml").unlink(),
        r"{root}/pyproject.toml: no such file \(its \[tool\.aml-pipeline-kit\] names the pipelines\)",
    ),
    "pyproject.toml that is not TOML": (
        lambda root: (root / "pyproject.toml").write_text("[tool.aml-pipeline-kit\n"),
        r"{root}/pyproject.toml: not valid TOML \(.+\)",
    ),
    "no [tool.aml-pipeline-kit] table": (
        lambda root: edited(root, "pyproject.toml", TOOL_TABLE, ""),
        r"{root}/pyproject.toml: \[tool\.aml-pipeline-kit\] must set pipelines = \"<package>\.<module>\" "
        r"\(found None\)",
    ),
    "a module named as no module can be": (
        lambda root: edited(root, "pyproject.toml", f'"{PACKAGE}.pipeline"', '"diabetes-blood-pressure.pipeline"'),
        r"{root}/pyproject.toml: \[tool\.aml-pipeline-kit\] must set pipelines = \"<package>\.<module>\" "
        r"\(found 'diabetes-blood-pressure\.pipeline'\)",
    ),
    "a module that is not there": (
        lambda root: edited(root, "pyproject.toml", f'"{PACKAGE}.pipeline"', f'"{PACKAGE}.graphs"'),
        rf"{{root}}/pyproject.toml: \[tool\.aml-pipeline-kit\] pipelines = '{PACKAGE}\.graphs' cannot be imported "
        rf"\(No module named '{PACKAGE}\.graphs'\)",
    ),
    "no register_pipelines": (
        lambda root: edited(root, PIPELINE_MODULE, "def register_pipelines(", "def pipelines("),
        rf"{{root}}/{PIPELINE_MODULE}: defines no register_pipelines\(project\)",
    ),
    "no training pipeline": (
        lambda root: edited(root, PIPELINE_MODULE, '{"training": training_pipeline, ', "{"),
        rf"{{root}}/{PIPELINE_MODULE}: register_pipelines\(\) must return a training pipeline and may return tuning, "
        r"scoring, monitoring; it returned tuning, scoring, monitoring",
    ),
    "a role the engine does not know": (
        lambda root: edited(root, PIPELINE_MODULE, '"monitoring": monitoring}', '"serving": scoring}'),
        rf"{{root}}/{PIPELINE_MODULE}: register_pipelines\(\) must return a training pipeline and may return tuning, "
        r"scoring, monitoring; it returned training, tuning, scoring, serving",
    ),
}


@pytest.mark.parametrize(("break_it", "line"), CONVENTION.values(), ids=CONVENTION.keys())
def test_a_project_that_names_its_pipelines_wrongly_is_refused_in_one_line(
    tmp_path: Path, break_it: Callable[[Path], object], line: str
) -> None:
    root = copy_example(tmp_path / "project")
    break_it(root)
    with pytest.raises(SettingsError) as refusal:
        load_project(root).pipelines  # noqa: B018 (the registered pipelines, read when first asked for)
    assert re.fullmatch(line.format(root=re.escape(str(root))), str(refusal.value)), str(refusal.value)


def test_the_command_says_so_in_one_line(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "project")
    CONVENTION["no training pipeline"][0](root)
    result = cli(root, "check", timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {root}/{PIPELINE_MODULE}: register_pipelines() must return a training pipeline")


def test_a_pipeline_the_project_does_not_register_is_named_in_one_line(tmp_path: Path) -> None:
    root = edited(
        copy_example(tmp_path / "project"), PIPELINE_MODULE, REGISTERED, 'return {"training": training_pipeline}'
    )
    project = load_project(root)
    with pytest.raises(SettingsError) as refusal:
        local_job(project, "scoring", model=root / "components")
    assert str(refusal.value) == (
        f"this project registers no scoring pipeline (register_pipelines in {root / PIPELINE_MODULE})"
    )


# --- check builds every pipeline the project registers ---------------------------------------------------------------


def test_check_builds_every_pipeline_the_project_registers(example: Path) -> None:
    assert set(checked_graphs(load_project(example))) == {"training", "tuning", "scoring", "monitoring"}


def test_a_role_the_project_cannot_offer_says_why_and_check_builds_the_rest(tmp_path: Path) -> None:
    root = edited(copy_example(tmp_path / "project"), "config.yml", "cv_folds: 5", "cv_folds: 0")
    edited(root, "config.yml", 'type: "auto"', 'type: "ridge"')  # auto chooses by cross-validation too
    project = load_project(root)
    assert set(checked_graphs(project)) == {"training", "scoring", "monitoring"}
    assert check_report(project).findings == []
    with pytest.raises(SettingsError) as refusal:
        local_job(project, "tuning", {"model_type": "ridge"})
    assert str(refusal.value) == (
        "this project has no tuning pipeline as it stands: tuning scores its trials by cross-validation: "
        "set cv_folds to 2 or more in config.yml"
    )


def test_check_finds_a_broken_component_that_only_the_scoring_pipeline_runs(tmp_path: Path) -> None:
    root = edited(
        copy_example(tmp_path / "project"),
        PIPELINE_MODULE,
        REGISTERED,
        'return {"training": training_pipeline, "scoring": scoring}',
    )
    edited(root, "components/score/score.py", '"--predictions"', '"--prediction"')
    lines = check_report(load_project(root)).text().splitlines()
    assert any(
        line.startswith("components/score/component.py")
        and "[command-flag] --predictions is passed by the command but score.py's parser has no such option" in line
        for line in lines
    ), "\n".join(lines)
