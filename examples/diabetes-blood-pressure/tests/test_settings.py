"""Where the project is, whoever imports the package from wherever, and the local paths config.yml decides."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from diabetes_blood_pressure.settings import (
    PROJECT_ROOT,
    ROOT_VARIABLE,
    Settings,
    SettingsError,
    find_project_root,
    main,
)

PACKAGES = ("diabetes_blood_pressure", "aml_pipeline_kit")


def make_project(folder: Path) -> Path:
    (folder / "components").mkdir(parents=True)
    (folder / "config.yml").write_text("target_column: y\n")
    return folder


def test_the_project_is_found_above_the_module_of_a_checkout_or_a_venv_inside_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    for module in ("src/package/settings.py", ".venv/lib/python3.11/site-packages/package/settings.py"):
        assert find_project_root(project / module, tmp_path, {}) == project


def test_an_install_elsewhere_finds_the_project_above_the_working_directory(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    installed = tmp_path / "venv/lib/python3.11/site-packages/package/settings.py"
    assert find_project_root(installed, project / "components" / "train", {}) == project


def test_the_environment_variable_wins(tmp_path: Path) -> None:
    project, other = make_project(tmp_path / "project"), make_project(tmp_path / "other")
    assert find_project_root(project / "src/package/settings.py", project, {ROOT_VARIABLE: str(other)}) == other


def test_outside_any_project_loading_says_where_it_looked_and_what_to_set(tmp_path: Path) -> None:
    assert find_project_root(tmp_path / "site-packages/package/settings.py", tmp_path, {}) == tmp_path
    with pytest.raises(SettingsError, match=f"{tmp_path} is not this project's folder .* set {ROOT_VARIABLE}"):
        Settings.load(tmp_path)


def run_installed_copy(site_packages: Path, cwd: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m <package>.settings`` with the packages imported from a copy outside the project, as a
    non-editable install would have them."""
    environment = {key: value for key, value in os.environ.items() if key != ROOT_VARIABLE}
    command = [sys.executable, "-m", f"{PACKAGES[0]}.settings", *arguments]
    return subprocess.run(
        command,
        cwd=cwd,
        env={**environment, "PYTHONPATH": str(site_packages), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_non_editable_install_works_from_within_the_project_or_with_the_variable(tmp_path: Path) -> None:
    site_packages = tmp_path / "site-packages"
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / "src" / package, site_packages / package, ignore=shutil.ignore_patterns("__py*"))
    expected = f"{Settings.load().local_tracking_uri}\n"
    inside = run_installed_copy(site_packages, PROJECT_ROOT / "components", "tracking-uri")
    assert (inside.returncode, inside.stdout) == (0, expected), inside.stderr
    pointed = run_installed_copy(site_packages, tmp_path, "tracking-uri", **{ROOT_VARIABLE: str(PROJECT_ROOT)})
    assert (pointed.returncode, pointed.stdout) == (0, expected), pointed.stderr
    outside = run_installed_copy(site_packages, tmp_path, "tracking-uri")
    assert outside.returncode == 2
    assert outside.stderr.startswith(f"error: {tmp_path.resolve()} is not this project's folder")
    assert len(outside.stderr.splitlines()) == 1


def test_local_outputs_follow_config_yml(tmp_path: Path) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())
    config["local"].update(runs_dir="scratch/runs", tracking_uri="sqlite:///stores/tracking.db")
    settings = Settings(root=tmp_path, config=config, compute={}, data_asset={})
    assert settings.local_runs_dir == tmp_path / "scratch" / "runs"
    assert settings.local_outputs() == [
        tmp_path / "scratch" / "runs",
        settings.local_artifacts_dir,
        tmp_path / "stores" / "tracking.db",
        tmp_path / "stores" / "tracking.db.lock",
    ]
    config["local"]["tracking_uri"] = "http://127.0.0.1:5000"  # a server's store is not ours to delete
    assert settings.local_outputs() == [tmp_path / "scratch" / "runs", settings.local_artifacts_dir]


def test_the_makefile_asks_these_paths_of_the_settings(capsys: pytest.CaptureFixture) -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "mlruns" not in makefile and "mlartifacts" not in makefile
    recipes = [line for line in makefile.splitlines() if line.startswith("\t")]
    assert not [line for line in recipes if re.search(r"(?<![\w-])runs(?![\w-])", line)]
    assert main(["local-outputs"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(path) for path in Settings.load().local_outputs()]
    assert main(["runs"]) == 2
    assert capsys.readouterr().err.startswith("error: expected one of: python -m")


def test_plain_make_lists_every_command_it_describes() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shown = subprocess.run(["make", "--no-print-directory"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    phony = [name for line in re.findall(r"^\.PHONY:(.*)$", makefile, re.MULTILINE) for name in line.split()]
    listed = [line.split()[0] for line in shown.stdout.splitlines()[1:]]
    assert sorted(listed) == sorted(phony)  # every command has its ## line


def test_make_shows_and_cleans_what_config_yml_names_and_nothing_else(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project = tmp_path / "project"
    for part in ("aml", "components"):
        shutil.copytree(PROJECT_ROOT / part, project / part)
    shutil.copy2(PROJECT_ROOT / "Makefile", project / "Makefile")
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())
    config["local"].update(runs_dir="my runs", tracking_uri="sqlite:///my store/t.db")
    (project / "config.yml").write_text(yaml.safe_dump(config))
    outputs = [project / "my runs" / "run 1" / "run.json", project / "my store" / "t.db", project / "mlartifacts" / "a"]
    kept = [project / "runs" / "kept.txt", project / "mlruns.db", project / "my store" / "notes.txt"]
    for path in [*outputs, *kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    environment = {**os.environ, ROOT_VARIABLE: str(project), "PYTHONPATH": str(PROJECT_ROOT / "src")}
    # The venv is this interpreter's: nothing to install.
    make = ["make", "--silent", "--no-print-directory", f"PYTHON={sys.executable}", "INSTALLED="]
    shown = subprocess.run([*make, "runs-dir"], cwd=project, env=environment, capture_output=True, text=True)
    assert (shown.returncode, shown.stdout) == (0, f"{project / 'my runs'}\n"), shown.stderr  # all CI reads
    cleaned = subprocess.run([*make, "clean"], cwd=project, env=environment, capture_output=True, text=True)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (project / "my runs").exists() and not (project / "mlartifacts").exists()
    assert not (project / "my store" / "t.db").exists()
    assert all(path.exists() for path in kept)
