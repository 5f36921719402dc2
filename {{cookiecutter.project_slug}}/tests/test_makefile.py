"""The Makefile: every command it has is listed by plain `make`, and it names no path config.yml decides: it asks the
engine (`aml-pipeline-kit show`) where local runs and their MLflow store are, shows and cleans those, and nothing
else."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT

from aml_pipeline_kit.project import ROOT_VARIABLE

MAKEFILE = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def test_the_makefile_names_no_local_path_of_config_yml() -> None:
    assert "mlruns" not in MAKEFILE and "mlartifacts" not in MAKEFILE
    recipes = [line for line in MAKEFILE.splitlines() if line.startswith("\t")]
    assert not [line for line in recipes if re.search(r"(?<![\w-])runs(?![\w-])", line)]


@needs_make
def test_plain_make_lists_every_command_it_describes() -> None:
    shown = subprocess.run(["make", "--no-print-directory"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    phony = [name for line in re.findall(r"^\.PHONY:(.*)$", MAKEFILE, re.MULTILINE) for name in line.split()]
    listed = [line.split()[0] for line in shown.stdout.splitlines()[1:]]
    assert sorted(listed) == sorted(phony)  # every command has its ## line


@needs_make
def test_make_shows_and_cleans_what_config_yml_names_and_nothing_else(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for part in ("aml", "components"):
        shutil.copytree(PROJECT_ROOT / part, project / part)
    for part in ("Makefile", "pyproject.toml"):
        shutil.copy2(PROJECT_ROOT / part, project / part)
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())
    config["local"].update(runs_dir="my runs", tracking_uri="sqlite:///my store/t.db")
    (project / "config.yml").write_text(yaml.safe_dump(config))
    outputs = [project / "my runs" / "run 1" / "run.json", project / "my store" / "t.db", project / "mlartifacts" / "a"]
    kept = [project / "runs" / "kept.txt", project / "mlruns.db", project / "my store" / "notes.txt"]
    for path in [*outputs, *kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    environment = {**os.environ, ROOT_VARIABLE: str(project), "PYTHONPATH": str(PROJECT_ROOT / "src")}
    # The engine of this interpreter's environment: nothing to install.
    make = ["make", "--silent", "--no-print-directory", f"KIT={sys.executable} -m aml_pipeline_kit", "INSTALLED="]
    shown = subprocess.run([*make, "runs-dir"], cwd=project, env=environment, capture_output=True, text=True)
    assert (shown.returncode, shown.stdout) == (0, f"{project / 'my runs'}\n"), shown.stderr  # all CI reads
    cleaned = subprocess.run([*make, "clean"], cwd=project, env=environment, capture_output=True, text=True)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (project / "my runs").exists() and not (project / "mlartifacts").exists()
    assert not (project / "my store" / "t.db").exists()
    assert all(path.exists() for path in kept)
