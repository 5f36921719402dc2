"""A project's life after the first render: the committed example, CI and pre-commit files,
and template updates pulled in with cruft.

- ``examples/<default slug>/`` is the default render, byte for byte; ``make example`` renders it again.
- Each ``ci`` choice renders its own CI files (GitHub Actions, Azure Pipelines or none), parsed here.
- cruft creates, checks and updates a project from a local git copy of this template: no network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEMPLATE_DIR, bake, rendered_values

TEMPLATE_PROJECT = "{{cookiecutter.project_slug}}"
DEFAULTS = rendered_values({})
DEFAULT_SLUG = DEFAULTS["project_slug"]
EXAMPLE = TEMPLATE_DIR / "examples" / DEFAULT_SLUG
CI_CHOICES = ("github", "azure-devops", "none")
CI_FILES = {
    "github": {".github/dependabot.yml", ".github/workflows/ci.yml", ".github/workflows/submit.yml"},
    "azure-devops": {"azure-pipelines.yml"},
    "none": set(),
}
CI_COMMANDS = ["make install", "make lint", "make check", "make test", "make test-e2e", "make run"]
# Where the report is: config.yml's local.runs_dir, asked through the project's settings (`make runs-dir`).
RUNS_DIR_STEP = {
    "github": 'echo "runs-dir=$(make --silent runs-dir)" >> "$GITHUB_OUTPUT"',
    "azure-devops": 'echo "##vso[task.setvariable variable=runsDir]`make --silent runs-dir`"',
}
AZURE_ML_GUIDE = "docs/azure-ml.md"  # a render's guide to submitting, from CI too
GITHUB_WORKFLOWS = sorted(name for name in CI_FILES["github"] if name.startswith(".github/workflows/"))
PINNED_REV = re.compile(r"v\d+\.\d+\.\d+")
# An action pinned to a full commit SHA, the release it is in a comment (what dependabot reads and updates).
PINNED_ACTION = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+$")
GITHUB_EXPRESSION = re.compile(r"\$\{\{ (vars|github)\.[A-Za-z_.]+ \}\}")


def files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- the committed example -------------------------------------------------------------------------------------


@pytest.fixture
def render_beside_examples() -> Iterator[Path]:
    """A scratch folder at the depth of examples/ in the template's folder, as `make example` renders (.gitignore
    ignores it): the engine's path a render writes, relative to the project, is the example's there. Removed after."""
    scratch = Path(tempfile.mkdtemp(dir=TEMPLATE_DIR, prefix=".example."))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch)


def test_the_committed_example_is_the_default_render(render_beside_examples: Path) -> None:
    fresh = bake({}, render_beside_examples)
    assert fresh.name == EXAMPLE.name
    assert EXAMPLE.is_dir(), f"{EXAMPLE} is missing: run `make example`"
    expected, committed = files(fresh), files(EXAMPLE)
    assert committed == expected, (
        f"run `make example`: missing {sorted(expected - committed)}, extra {sorted(committed - expected)}"
    )
    differing = sorted(name for name in expected if (fresh / name).read_bytes() != (EXAMPLE / name).read_bytes())
    assert differing == [], f"run `make example`: {differing} differ from a fresh render"


def test_git_would_commit_every_file_of_the_example() -> None:
    if shutil.which("git") is None or not (TEMPLATE_DIR / ".git").exists():
        pytest.skip("not a git work tree")
    paths = "\n".join(f"examples/{EXAMPLE.name}/{name}" for name in sorted(files(EXAMPLE)))
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=TEMPLATE_DIR,
        input=paths,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout == "", f"git ignores these files of the example:\n{ignored.stdout}"


def test_the_template_tooling_leaves_the_example_alone() -> None:
    """The template's ruff config excludes examples/, `pytest tests` collects none of it, and the example
    passes ruff with its own config, as every render does."""
    ruff = [sys.executable, "-m", "ruff"]
    shown = subprocess.run(
        [*ruff, "check", "--no-cache", "--force-exclude", "--show-files", "hooks", "tests", "examples"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert "post_gen_project.py" in shown.stdout
    assert str(TEMPLATE_DIR / "examples") not in shown.stdout
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run([*ruff, *command], cwd=EXAMPLE, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert "test_lifecycle.py::" in collected.stdout
    assert not [line for line in collected.stdout.splitlines() if line.startswith("examples")]


# --- CI and pre-commit files -----------------------------------------------------------------------------------


def test_ci_is_a_choice_defaulting_to_github_with_a_prompt_for_each_option() -> None:
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
    assert context["ci"] == list(CI_CHOICES)
    assert set(context["__prompts__"]["ci"]) == {"__prompt__", *CI_CHOICES}


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {ci: bake({"ci": ci}, tmp_path_factory.mktemp(f"ci-{ci}")) for ci in CI_CHOICES}


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` block, which YAML 1.1 (and so PyYAML) reads as the key True."""
    return workflow["on"] if "on" in workflow else workflow[True]


def step_uses(steps: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [step for step in steps if step.get("uses", "").startswith(f"{action}@")]


@pytest.mark.parametrize("ci", CI_CHOICES)
def test_each_ci_choice_renders_only_its_own_files(renders: dict[str, Path], ci: str) -> None:
    present = {name for name in files(renders[ci]) if name in set().union(*CI_FILES.values())}
    assert present == CI_FILES[ci]
    if ci != "github":
        assert not (renders[ci] / ".github").exists()
    guide = (renders[ci] / AZURE_ML_GUIDE).read_text(encoding="utf-8")
    assert ("submit.yml" in guide) == (ci == "github")
    assert ("AzureCLI@2" in guide) == (ci == "azure-devops")
    assert ("without a CI configuration" in guide) == (ci == "none")


def test_github_workflows_survive_rendering_verbatim(renders: dict[str, Path]) -> None:
    for name in GITHUB_WORKFLOWS:
        source = (TEMPLATE_DIR / TEMPLATE_PROJECT / name).read_text(encoding="utf-8")
        rendered = (renders["github"] / name).read_text(encoding="utf-8")
        assert rendered == source, name
        assert GITHUB_EXPRESSION.search(rendered), name


def test_github_ci_workflow_lints_checks_tests_and_runs_on_pull_requests(renders: dict[str, Path]) -> None:
    workflow = load_yaml(renders["github"] / ".github/workflows/ci.yml")
    on = triggers(workflow)
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    assert "workflow_dispatch" not in on
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    steps = job["steps"]
    assert step_uses(steps, "actions/checkout")
    (setup,) = step_uses(steps, "actions/setup-python")
    assert str(setup["with"]["python-version"]) == "3.11"
    assert [step["run"] for step in steps if "run" in step] == [*CI_COMMANDS, RUNS_DIR_STEP["github"]]
    (upload,) = step_uses(steps, "actions/upload-artifact")
    (runs_dir,) = [step for step in steps if step.get("run") == RUNS_DIR_STEP["github"]]
    assert steps.index(upload) > steps.index(runs_dir)
    assert upload["with"]["path"] == f"${{{{ steps.{runs_dir['id']}.outputs.runs-dir }}}}/*/evaluate/report/"
    text = (renders["github"] / ".github/workflows/ci.yml").read_text(encoding="utf-8")
    assert "secrets." not in text


def test_github_submit_workflow_is_manual_and_signs_in_with_renewable_oidc(renders: dict[str, Path]) -> None:
    path = renders["github"] / ".github/workflows/submit.yml"
    text = path.read_text(encoding="utf-8")
    workflow = load_yaml(path)
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    # The project's credential exchanges a fresh GitHub OIDC token whenever it needs an Azure token; no Azure CLI
    # session, which cannot renew itself after about ten minutes (Azure/azure-cli#28708).
    assert job["env"] == {
        "AZURE_CLIENT_ID": "${{ vars.AZURE_CLIENT_ID }}",
        "AZURE_TENANT_ID": "${{ vars.AZURE_TENANT_ID }}",
        "AZURE_SUBSCRIPTION_ID": "${{ vars.AZURE_SUBSCRIPTION_ID }}",
        "AZURE_RESOURCE_GROUP": "${{ vars.AZURE_RESOURCE_GROUP }}",
        "AZUREML_WORKSPACE_NAME": "${{ vars.AZUREML_WORKSPACE_NAME }}",
    }
    steps = job["steps"]
    assert step_uses(steps, "actions/checkout")
    (setup,) = step_uses(steps, "actions/setup-python")
    assert str(setup["with"]["python-version"]) == "3.11"
    assert step_uses(steps, "azure/login") == []
    runs = [step["run"] for step in steps if "run" in step]
    assert runs == ["make install", "make submit"]
    assert "secrets." not in text
    for expression in (
        "${{ vars.AZURE_CLIENT_ID }}",
        "${{ vars.AZURE_TENANT_ID }}",
        "${{ vars.AZUREML_WORKSPACE_NAME }}",
    ):
        assert expression in text


def test_github_actions_are_pinned_to_commits_and_checkouts_keep_no_credentials(renders: dict[str, Path]) -> None:
    for name in GITHUB_WORKFLOWS:
        text = (renders["github"] / name).read_text(encoding="utf-8")
        uses = [line for line in text.splitlines() if re.match(r"^\s*(- )?uses:", line)]
        assert uses, name
        assert [line for line in uses if not PINNED_ACTION.match(line)] == [], name
        for job in load_yaml(renders["github"] / name)["jobs"].values():
            for checkout in step_uses(job["steps"], "actions/checkout"):
                assert checkout["with"]["persist-credentials"] is False, name


def test_dependabot_keeps_the_action_and_python_pins_current(renders: dict[str, Path]) -> None:
    updates = load_yaml(renders["github"] / ".github/dependabot.yml")["updates"]
    assert {(update["package-ecosystem"], update["directory"]) for update in updates} == {
        ("github-actions", "/"),
        ("pip", "/"),
    }


def test_azure_pipelines_test_pull_requests_and_submit_only_by_hand(renders: dict[str, Path]) -> None:
    path = renders["azure-devops"] / "azure-pipelines.yml"
    pipeline = load_yaml(path)
    assert pipeline["trigger"]["branches"]["include"] == ["main"]
    assert pipeline["pr"]["branches"]["include"] == ["main"]
    assert pipeline["variables"]["azureServiceConnection"]
    stages = {stage["stage"]: stage for stage in pipeline["stages"]}
    assert list(stages) == ["CI", "Submit"]

    (ci_job,) = stages["CI"]["jobs"]
    ci_steps = ci_job["steps"]
    assert ci_steps[0] == {"checkout": "self"}
    (python,) = [step for step in ci_steps if step.get("task") == "UsePythonVersion@0"]
    assert python["inputs"]["versionSpec"] == "$(pythonVersion)"
    assert str(pipeline["variables"]["pythonVersion"]) == "3.11"
    assert [step["script"] for step in ci_steps if "script" in step] == [*CI_COMMANDS, RUNS_DIR_STEP["azure-devops"]]
    tasks = [step.get("task") for step in ci_steps]
    assert tasks.index("PublishPipelineArtifact@1") > tasks.index("CopyFiles@2")
    (copy,) = [step for step in ci_steps if step.get("task") == "CopyFiles@2"]
    assert copy["inputs"]["SourceFolder"] == "$(runsDir)"
    assert "evaluate/report" in copy["inputs"]["Contents"]

    submit = stages["Submit"]
    assert submit["dependsOn"] == "CI"
    assert "eq(variables['Build.Reason'], 'Manual')" in submit["condition"]
    (submit_job,) = submit["jobs"]
    submit_steps = submit_job["steps"]
    assert [step["script"] for step in submit_steps if "script" in step] == ["make install"]
    (azure_cli,) = [step for step in submit_steps if step.get("task") == "AzureCLI@2"]
    inputs = azure_cli["inputs"]
    assert inputs["azureSubscription"] == "$(azureServiceConnection)"
    assert inputs["scriptType"] == "bash"
    assert inputs["inlineScript"].strip().splitlines()[-1] == "make submit"
    assert "addSpnToEnvironment" not in inputs
    # AzurePipelinesCredential renews its sign-in through the service connection with the job's access token.
    assert azure_cli["env"] == {"SYSTEM_ACCESSTOKEN": "$(System.AccessToken)"}
    text = path.read_text(encoding="utf-8")
    macros = set(re.findall(r"\$\(([\w.]+)\)", text))
    expected = {"pythonVersion", "azureServiceConnection", "Build.ArtifactStagingDirectory", "System.AccessToken"}
    expected.add("runsDir")  # set by the step that asks config.yml where the runs are
    assert macros == expected, macros
    assert text == (TEMPLATE_DIR / TEMPLATE_PROJECT / "azure-pipelines.yml").read_text(encoding="utf-8")


def submit_stage(pipeline: dict[str, Any]) -> dict[str, Any]:
    (stage,) = [stage for stage in pipeline["stages"] if stage["stage"] == "Submit"]
    return stage


WORKSPACE_SCOPE = (
    "--scope /subscriptions/<subscription id>/resourceGroups/<resource group>"
    "/providers/Microsoft.MachineLearningServices/workspaces/<workspace>"
)


def least_privilege(guide: str) -> bool:
    """The identity CI signs in as gets the two built-in roles `submit` needs, on the workspace alone, and no other
    role is granted anywhere."""
    roles = [role.strip('"') for role in re.findall(r'--role ("[^"]+"|\S+)', guide)]
    return roles == ["AzureML Data Scientist", "AzureML Compute Operator"] and guide.count(WORKSPACE_SCOPE) == 2


# What holds a submission from CI in, one row each: (ci choice, rendered file, what must hold of it: the file
# parsed as YAML, or its text for a page of documentation)
SUBMISSION_GUARDS: dict[str, tuple[str, str, Callable[[Any], bool]]] = {
    "the GitHub submit job stops within two hours": (
        "github",
        ".github/workflows/submit.yml",
        lambda workflow: 0 < workflow["jobs"]["submit"]["timeout-minutes"] <= 120,
    ),
    "the Azure Pipelines submit job stops within two hours": (
        "azure-devops",
        "azure-pipelines.yml",
        lambda pipeline: 0 < submit_stage(pipeline)["jobs"][0]["timeoutInMinutes"] <= 120,
    ),
    "the Azure Pipelines Submit stage runs for main only, even by hand": (
        "azure-devops",
        "azure-pipelines.yml",
        lambda pipeline: (
            "eq(variables['Build.SourceBranch'], 'refs/heads/main')" in submit_stage(pipeline)["condition"]
        ),
    ),
    "the GitHub setup grants two workspace roles, not Contributor on the resource group": (
        "github",
        AZURE_ML_GUIDE,
        least_privilege,
    ),
    "the Azure DevOps setup grants least privilege and branch control on the service connection": (
        "azure-devops",
        AZURE_ML_GUIDE,
        lambda guide: least_privilege(guide) and "Branch control" in guide,
    ),
}


@pytest.mark.parametrize("guard", list(SUBMISSION_GUARDS))
def test_a_submission_from_ci_is_held_in(renders: dict[str, Path], guard: str) -> None:
    ci, name, holds = SUBMISSION_GUARDS[guard]
    path = renders[ci] / name
    assert holds(path.read_text(encoding="utf-8") if name.endswith(".md") else load_yaml(path)), guard


def test_pre_commit_config_pins_its_hooks_and_runs_the_project_check(renders: dict[str, Path]) -> None:
    project = renders["github"]
    config = load_yaml(project / ".pre-commit-config.yaml")
    repos = {repo["repo"]: repo for repo in config["repos"]}
    for url, repo in repos.items():
        if url != "local":
            assert PINNED_REV.fullmatch(repo["rev"]), f"{url} is not pinned to a release: {repo['rev']}"

    standard = repos["https://github.com/pre-commit/pre-commit-hooks"]
    ids = {hook["id"] for hook in standard["hooks"]}
    assert {"check-yaml", "check-toml", "end-of-file-fixer", "trailing-whitespace"} <= ids

    ruff = repos["https://github.com/astral-sh/ruff-pre-commit"]
    assert [hook["id"] for hook in ruff["hooks"]] == ["ruff-check", "ruff-format"]
    dev = tomllib.loads((project / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    ruff_pin = next(requirement.split("==")[1] for requirement in dev if requirement.startswith("ruff=="))
    assert ruff["rev"] == f"v{ruff_pin}", "the pre-commit ruff and the pinned dev ruff differ"

    (check,) = repos["local"]["hooks"]
    assert check["entry"] == ".venv/bin/aml-pipeline-kit check"  # as `make check` runs it
    assert check["language"] == "system"
    assert check["pass_filenames"] is False


def test_a_fresh_render_passes_the_whitespace_hooks(renders: dict[str, Path]) -> None:
    """trailing-whitespace and end-of-file-fixer change nothing in a fresh render (data/ is exempt)."""
    for project in renders.values():
        for name in sorted(files(project)):
            if name.startswith("data/"):
                continue
            try:
                text = (project / name).read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            if not text:
                continue
            assert text.endswith("\n") and not text.endswith("\n\n"), f"{name}: must end with one newline"
            trailing = [number for number, line in enumerate(text.splitlines(), 1) if line != line.rstrip()]
            assert trailing == [], f"{name}: trailing whitespace on lines {trailing}"


# --- template updates with cruft, offline ------------------------------------------------------------------------


def git_env(home: Path) -> dict[str, str]:
    """git and cookiecutter without the user's configuration: fixed identity, no global or system config."""
    config = home / "cookiecutterrc"
    config.write_text(f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n")
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "Template Tests",
        "GIT_AUTHOR_EMAIL": "tests@example.com",
        "GIT_COMMITTER_NAME": "Template Tests",
        "GIT_COMMITTER_EMAIL": "tests@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "COOKIECUTTER_CONFIG": str(config),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def template_files() -> list[str]:
    """The template as a commit would hold it: tracked and new files, without the example or local clutter."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(
        name
        for name in set(listed.split("\0"))
        if name and not name.startswith("examples/") and (TEMPLATE_DIR / name).is_file()
    )


class Shell:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *command: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600)
        if check:
            assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
        return result

    def git(self, *args: str, cwd: Path) -> str:
        return self("git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args, cwd=cwd).stdout.strip()

    def cruft(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self(sys.executable, "-m", "cruft", *args, cwd=cwd, check=check)

    def commit_all(self, repo: Path, message: str) -> str:
        self.git("add", "--all", cwd=repo)
        self.git("commit", "--quiet", "-m", message, cwd=repo)
        return self.git("rev-parse", "HEAD", cwd=repo)


@pytest.mark.slow  # seconds of git and cruft
@pytest.mark.skipif(shutil.which("git") is None, reason="cruft needs git")
def test_cruft_creates_checks_and_updates_a_project_from_a_local_template_repo(tmp_path: Path) -> None:
    if not (TEMPLATE_DIR / ".git").exists():
        pytest.skip("the template is not a git work tree")
    shell = Shell(git_env(tmp_path))

    # A git repository holding the template, as cruft needs one: a local path, so no network.
    template = tmp_path / "template"
    for name in template_files():
        (template / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_DIR / name, template / name)
    shell.git("init", "--quiet", cwd=template)
    first = shell.commit_all(template, "template")

    created = tmp_path / "projects"
    shell.cruft("create", str(template), "--no-input", "--output-dir", str(created), cwd=tmp_path)
    project = created / DEFAULT_SLUG
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == str(template)
    assert state["commit"] == first
    assert (project / "README.md").is_file()
    shell.git("init", "--quiet", cwd=project)
    shell.commit_all(project, "rendered")
    check = shell.cruft("check", cwd=project)
    assert "up to date" in check.stdout

    # The project's own edit, and then a template change to the same file and a new file.
    readme = project / "README.md"
    own_line = "Team note: this line is ours and must survive template updates."
    lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
    readme.write_text("".join([lines[0], "\n", own_line, "\n", *lines[1:]]), encoding="utf-8")
    shell.commit_all(project, "our edit")

    template_readme = template / TEMPLATE_PROJECT / "README.md"
    with template_readme.open("a", encoding="utf-8") as handle:
        handle.write("\nTemplate update: {{ cookiecutter.project_slug }} gets this line from the template.\n")
    (template / TEMPLATE_PROJECT / "CHANGELOG.md").write_text("# {{ cookiecutter.project_name }} changelog\n")
    second = shell.commit_all(template, "template change")

    outdated = shell.cruft("check", cwd=project, check=False)
    assert outdated.returncode == 1
    assert "out of date" in outdated.stdout

    shell.cruft("update", "--skip-apply-ask", cwd=project)
    updated = readme.read_text(encoding="utf-8")
    assert f"Template update: {DEFAULT_SLUG} gets this line from the template." in updated
    assert own_line in updated
    assert (project / "CHANGELOG.md").read_text() == f"# {DEFAULTS['project_name']} changelog\n"
    assert list(project.rglob("*.rej")) == []
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second

    shell.commit_all(project, "template update")
    assert "up to date" in shell.cruft("check", cwd=project).stdout
