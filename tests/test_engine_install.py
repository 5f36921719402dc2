"""Where a render takes its engine from, and a project of the template before the engine split moving onto it.

A render requires ``aml-pipeline-kit==<the template's engine version>`` and names where ``make install`` takes it
from in ``[tool.uv.sources]``: the template's repository at the commit rendered (a git URL, or cruft), or the
template's folder (a local checkout). Each source is built here as uv builds it for ``make install``, offline
(``pip wheel --no-build-isolation``: the build backend is the one of this venv), and must give that version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_DIR, bake, rendered_values
from test_lifecycle import DEFAULT_SLUG, Shell, git_env, template_files

ENGINE = TEMPLATE_DIR / "aml-pipeline-kit"
ENGINE_VERSION = re.search(
    r'^__version__ = "([^"]+)"$', (ENGINE / "src" / "aml_pipeline_kit" / "__init__.py").read_text(), re.MULTILINE
)[1]
# The template's last commit before the engine became a distribution of its own: projects rendered from it carry
# the engine in src/aml_pipeline_kit/ and the generic glue in their own package.
PREVIOUS_VERSION = "ce2764f003e6"
DEFAULTS = rendered_values({})
PACKAGE = DEFAULTS["__package_name"]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
SLOW_BUILD = pytest.mark.slow  # builds the engine's wheel (and, to move a project, runs cruft): seconds each


def engine_requirement(project: Path) -> tuple[str, dict[str, str]]:
    """The engine's version requirement and its ``[tool.uv.sources]`` entry in ``project``'s pyproject.toml."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    (requirement,) = [name for name in pyproject["project"]["dependencies"] if name.startswith("aml-pipeline-kit")]
    return requirement, pyproject["tool"]["uv"]["sources"]["aml-pipeline-kit"]


def without_rustc(path: str) -> str:
    """``path`` (a PATH) without the folders that hold a ``rustc``: pip asks ``rustc --version`` for its user agent
    whenever one is on PATH, and rustup's ``rustc`` writes ~/.rustup/ on its first call; tests write nothing in HOME."""
    return os.pathsep.join(folder for folder in path.split(os.pathsep) if not (Path(folder) / "rustc").exists())


def built_version(source: str, destination: Path) -> str:
    """The version of the wheel pip builds from ``source`` (a folder, or a git URL), offline."""
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", *offline, "--wheel-dir", str(destination), source],
        env={**os.environ, "PATH": without_rustc(os.environ.get("PATH", ""))},
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (wheel,) = destination.glob("aml_pipeline_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        return re.search(r"^Version: (.+)$", archive.read(metadata).decode(), re.MULTILINE)[1]


def direct_reference(source: dict[str, str], project: Path) -> str:
    """``[tool.uv.sources]``'s entry as pip takes it: the folder, or the git URL at the commit."""
    if "path" in source:
        return str((project / source["path"]).resolve())
    return f"git+{source['git']}@{source['rev']}#subdirectory={source['subdirectory']}"


def template_repository(shell: Shell, destination: Path) -> tuple[Path, str]:
    """A git repository holding the template as it stands (committed or not), and its commit."""
    for name in template_files():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_DIR / name, destination / name)
    shell.git("init", "--quiet", cwd=destination)
    return destination, shell.commit_all(destination, "template")


@SLOW_BUILD
def test_a_render_from_a_local_checkout_takes_the_engine_from_the_template_folder(tmp_path: Path) -> None:
    project = bake({}, tmp_path)
    requirement, source = engine_requirement(project)
    assert requirement == f"aml-pipeline-kit=={ENGINE_VERSION}"
    assert source == {"path": str(ENGINE)}  # outside the template's folder: absolute
    assert built_version(direct_reference(source, project), tmp_path / "wheels") == ENGINE_VERSION


def test_the_example_takes_the_engine_by_its_path_inside_the_template() -> None:
    example = TEMPLATE_DIR / "examples" / DEFAULT_SLUG
    _, source = engine_requirement(example)
    assert source == {"path": "../../aml-pipeline-kit"}
    assert (example / source["path"]).resolve() == ENGINE


@SLOW_BUILD
def test_a_render_from_a_git_url_takes_the_engine_from_the_repository_at_the_commit_rendered(tmp_path: Path) -> None:
    shell = Shell(git_env(tmp_path))
    repository, commit = template_repository(shell, tmp_path / "template")
    url = f"git+{repository.as_uri()}"  # as `cookiecutter gh:<org>/<template>` clones, without the network
    shell(sys.executable, "-m", "cookiecutter", "--no-input", url, "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    project = tmp_path / "out" / DEFAULT_SLUG
    requirement, source = engine_requirement(project)
    assert requirement == f"aml-pipeline-kit=={ENGINE_VERSION}"
    assert source == {"git": repository.as_uri(), "rev": commit, "subdirectory": "aml-pipeline-kit"}
    assert built_version(direct_reference(source, project), tmp_path / "wheels") == ENGINE_VERSION


@SLOW_BUILD
def test_a_project_of_the_previous_template_moves_onto_the_engine_with_cruft_update(tmp_path: Path) -> None:
    shell = Shell(git_env(tmp_path))
    known = subprocess.run(["git", "cat-file", "-e", f"{PREVIOUS_VERSION}^{{commit}}"], cwd=TEMPLATE_DIR, check=False)
    assert known.returncode == 0, f"the template's history lacks {PREVIOUS_VERSION}: run from a full clone"

    # The template's repository: the previous version, then this one.
    template = tmp_path / "template"
    template.mkdir()
    archive = subprocess.run(["git", "archive", PREVIOUS_VERSION], cwd=TEMPLATE_DIR, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(template)], input=archive.stdout, check=True)
    shutil.rmtree(template / "examples")
    shell.git("init", "--quiet", cwd=template)
    previous = shell.commit_all(template, "the template before the engine split")

    shell.cruft("create", str(template), "--no-input", "--output-dir", str(tmp_path / "projects"), cwd=tmp_path)
    project = tmp_path / "projects" / DEFAULT_SLUG
    assert (project / "src" / "aml_pipeline_kit").is_dir()
    shell.git("init", "--quiet", cwd=project)
    shell.commit_all(project, "rendered")
    evaluate = project / "components" / "evaluate" / "evaluate.py"
    own_line = "# Team note: our own line in our own component, which the update must keep.\n"
    evaluate.write_text(evaluate.read_text(encoding="utf-8") + own_line, encoding="utf-8")
    shell.commit_all(project, "our edit")

    for name in [name for name in template.rglob("*") if name.is_file() and ".git" not in name.parts]:
        name.unlink()
    for name in template_files():
        (template / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_DIR / name, template / name)
    current = shell.commit_all(template, "the engine as a distribution")
    assert current != previous

    shell.cruft("update", "--skip-apply-ask", cwd=project)
    assert list(project.rglob("*.rej")) == []
    assert json.loads((project / ".cruft.json").read_text())["commit"] == current
    assert not (project / "src" / "aml_pipeline_kit").exists()
    assert sorted(path.name for path in (project / "src" / PACKAGE).glob("*.py")) == [
        "__init__.py",
        "parameters.py",
        "pipeline.py",
    ]
    assert evaluate.read_text(encoding="utf-8").endswith(own_line)
    requirement, source = engine_requirement(project)
    assert requirement == f"aml-pipeline-kit=={ENGINE_VERSION}"
    assert source == {"git": template.as_uri(), "rev": current, "subdirectory": "aml-pipeline-kit"}
    assert built_version(direct_reference(source, project), tmp_path / "wheels") == ENGINE_VERSION

    # The moved project works with the engine: this venv's, the version its source builds.
    check = shell(sys.executable, "-m", "aml_pipeline_kit", "check", cwd=project)
    assert "no findings" in check.stdout


# --- the engine's release path ----------------------------------------------------------------------------------

RELEASE_WORKFLOW = TEMPLATE_DIR / ".github" / "workflows" / "release-engine.yml"


def test_the_release_workflow_publishes_the_tagged_engine_with_trusted_publishing_only() -> None:
    """A tag aml-pipeline-kit-v<version> builds the engine and publishes it with PyPI's trusted publishing: the only
    job with an OIDC token, checked to be the engine's version, nothing else triggering it."""
    workflow = yaml.safe_load(RELEASE_WORKFLOW.read_text(encoding="utf-8"))
    assert workflow[True] == {"push": {"tags": ["aml-pipeline-kit-v*"]}}  # PyYAML reads the key `on` as True
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"]["name"] == "pypi"
    steps = job["steps"]
    assert any("aml-pipeline-kit/src/aml_pipeline_kit/__init__.py" in step.get("run", "") for step in steps)
    assert any("uv build aml-pipeline-kit" in step.get("run", "") for step in steps)
    assert steps[-1]["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert steps[-1]["with"] == {"packages-dir": "aml-pipeline-kit/dist/"}
    assert "password" not in json.dumps(workflow)  # no stored token


def test_the_release_workflow_passes_zizmor_and_githubs_schema() -> None:
    tools = Path(sys.executable).parent
    zizmor = subprocess.run(
        [str(tools / "zizmor"), "--offline", "--persona=pedantic", "--no-progress", str(RELEASE_WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    assert "No findings to report" in zizmor.stdout
    schema = [str(tools / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(RELEASE_WORKFLOW)]
    checked = subprocess.run(schema, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_engine_version_the_tag_names_is_the_one_the_build_gives(tmp_path: Path) -> None:
    """What the release workflow's tag check reads (__init__.py's __version__) is the built distribution's version."""
    assert built_version(str(ENGINE), tmp_path) == ENGINE_VERSION
