"""benchmarks/peers.py writes its peers' projects from strings: every file it writes parses, and the steps' shared
module fits a ridge render's data. No peer is installed here: `make benchmark-peers` runs them."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_DIR, Bake

BENCHMARKS = TEMPLATE_DIR / "benchmarks"


def test_peer_projects_are_written_whole_and_parse(
    bakes: Callable[[str], Bake], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    peers = importlib.import_module("peers")
    settings = peers.read_settings(bakes("ridge-only").path)
    kedro_version = re.search(r"^kedro==(\S+)", (BENCHMARKS / "peers-kedro.txt").read_text(), re.MULTILINE)[1]

    read = [
        peers.write_script(tmp_path / "script", settings),
        peers.write_kedro_project(tmp_path / "kedro", settings, Path(sys.executable), kedro_version),
        peers.write_zenml_project(tmp_path / "zenml", settings),
    ]

    assert all(data.read_bytes() == settings.data.read_bytes() for data in read)
    for script in tmp_path.rglob("*.py"):
        ast.parse(script.read_text(), filename=str(script))
    conf = tmp_path / "kedro" / "conf" / "base"
    catalog = yaml.safe_load((conf / "catalog.yml").read_text())
    save_args = catalog["model"]["save_args"]
    assert any(requirement.startswith("scikit-learn==") for requirement in save_args["pip_requirements"])
    assert isinstance(save_args["skops_trusted_types"], list)
    assert yaml.safe_load((conf / "parameters.yml").read_text())["alpha"] == settings.values["alpha"]
    tracking = yaml.safe_load((conf / "mlflow.yml").read_text())["tracking"]
    assert tracking["experiment"]["name"] == settings.values["experiment"]
    pyproject = tomllib.loads((tmp_path / "kedro" / "pyproject.toml").read_text())
    assert pyproject["tool"]["kedro"]["package_name"] == "peer_kedro"
