"""The project's settings: ``config.yml`` and the Azure ML specs in ``aml/``, read once.

``python -m {{ cookiecutter.__package_name }}.settings runs-dir|tracking-uri|local-outputs`` prints config.yml's
folder of local runs, its local MLflow store, or all that local runs leave behind (one absolute path a line): what
the Makefile and CI ask, so that they name no path config.yml decides.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from aml_pipeline_kit.config_files import YAML_SUFFIXES, SettingsError, check_yaml_files, read_yaml
from aml_pipeline_kit.data_refs import reference_key

# Set, the project's folder wherever this package is installed or run from.
ROOT_VARIABLE = "{{ cookiecutter.__package_name | upper }}_ROOT"
LOCAL_ARTIFACTS_DIR = "mlartifacts"  # under the project root: the artifacts of local runs' MLflow runs


def is_project(folder: Path) -> bool:
    return (folder / "config.yml").is_file() and (folder / "components").is_dir()


def find_project_root(module_file: Path, cwd: Path, environ: Mapping[str, str]) -> Path:
    """The project's folder: ``$<PACKAGE>_ROOT`` if set; else the nearest folder holding config.yml and components/
    above this module (a checkout, editable install, or a venv inside the project), or above the working
    directory (an install elsewhere, run from within the project). Found nowhere: the working directory, whose
    missing config.yml ``Settings.load`` reports."""
    if environ.get(ROOT_VARIABLE):
        return Path(environ[ROOT_VARIABLE]).resolve()
    for start in (module_file.resolve().parent, cwd.resolve()):
        found = next((folder for folder in (start, *start.parents) if is_project(folder)), None)
        if found is not None:
            return found
    return cwd.resolve()


PROJECT_ROOT = find_project_root(Path(__file__), Path.cwd(), os.environ)
AML_DIR = PROJECT_ROOT / "aml"
COMPONENTS_DIR = PROJECT_ROOT / "components"


# Pipeline inputs that carry column names, which come from the CSV and may hold anything: the steps receive them
# base64-encoded JSON, safe in any command line. Given as text (-p), a list is comma-separated.
COLUMN_INPUTS = ("target_column", "numeric_columns", "categorical_columns")

AUTO = "auto"  # every candidate trained, the best on the validation split kept

# Azure ML's rule for an asset's name, a registered model's included; MLflow's local registry takes more.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}")
MODEL_NAME_RULE = "1-255 letters, digits, underscores or hyphens, starting with a letter or digit"


def model_name_problem(name: object) -> str | None:
    """Why the register step could not register a model in an Azure ML workspace as ``name``; None if it could."""
    if isinstance(name, str) and MODEL_NAME.fullmatch(name):
        return None
    return f"must be {MODEL_NAME_RULE} (Azure ML's rule for a model's name)"


def encoded(value: object) -> str:
    """``value`` as base64-encoded JSON: letters, digits, ``+``, ``/`` and ``=`` only, whatever it holds."""
    return base64.b64encode(json.dumps(value).encode()).decode()


def column_input(name: str, value: Any) -> str | None:
    """A column input's value as the steps take it; unset stays unset."""
    if value is None:
        return None
    if name == "target_column":
        return encoded(str(value))
    names = [part.strip() for part in value.split(",")] if isinstance(value, str) else list(value)
    return encoded([str(part) for part in names if part]) if names else None


def regressors_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("regressors", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise SettingsError(f"{path}: no such file (it declares the regressors)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Settings:
    root: Path
    config: dict[str, Any]
    compute: dict[str, Any]
    data_asset: dict[str, Any]

    @classmethod
    def load(cls, root: Path = PROJECT_ROOT) -> Settings:
        if not is_project(root):
            raise SettingsError(
                f"{root} is not this project's folder (no config.yml and components/ here or above): "
                f"run from within the project, or set {ROOT_VARIABLE} to its folder"
            )
        specs = (path for folder in ("aml", "components") for path in sorted((root / folder).rglob("*")))
        check_yaml_files(path for path in specs if path.suffix in YAML_SUFFIXES)  # before azure-ai-ml reads one
        return cls(
            root=root,
            config=read_yaml(root / "config.yml"),
            compute=read_yaml(root / "aml" / "compute.yml"),
            data_asset=read_yaml(root / "aml" / "data.yml"),
        )

    def setting(self, *keys: str) -> Any:
        """A value of config.yml by its path of keys, e.g. ``setting("azure", "workspace")``."""
        node: Any = self.config
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                raise SettingsError(f"{self.root / 'config.yml'}: missing setting {'.'.join(keys[: depth + 1])}")
            node = node[key]
        return node

    @cached_property
    def regressors(self) -> ModuleType:
        """components/train/regressors.py, the one declaration of the regressors and their hyperparameters."""
        return regressors_module(self.root / "components" / "train" / "regressors.py")

    def model_candidates(self) -> list[str]:
        """The model types ``auto`` chooses from: config.yml's model.candidates, by default every regressor."""
        declared = list(self.regressors.REGRESSORS)
        candidates = list(self.setting("model").get("candidates") or declared)
        unknown = [name for name in candidates if name not in declared]
        if unknown:
            raise SettingsError(
                f"{self.root / 'config.yml'}: model.candidates {candidates} must list some of: {', '.join(declared)}"
            )
        return candidates

    @property
    def local_data_path(self) -> Path:
        """The CSV behind the data asset, as the local runner reads it."""
        return (self.root / "aml" / self.data_asset["path"]).resolve()

    @property
    def data_asset_uri(self) -> str:
        return f"azureml:{self.data_asset['name']}:{self.data_asset['version']}"

    @property
    def data_substitutes(self) -> dict[str, Path]:
        """config.yml's local.data_substitutes: data references a pipeline job file reads (an asset
        ``name@latest``, a URL) mapped to local paths, relative to the project root, for local runs."""
        substitutes = (self.config.get("local") or {}).get("data_substitutes") or {}
        if not isinstance(substitutes, dict) or not all(isinstance(path, str) for path in substitutes.values()):
            raise SettingsError(
                f"{self.root / 'config.yml'}: local.data_substitutes must map data references to local paths"
            )
        return {reference_key(str(reference)): self.root / path for reference, path in substitutes.items()}

    @property
    def local_tracking_uri(self) -> str:
        """The MLflow store of local runs; a relative SQLite path is taken from the project root."""
        uri = str(self.setting("local", "tracking_uri"))
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not Path(uri.removeprefix(prefix)).is_absolute():
            return prefix + str(self.root / uri.removeprefix(prefix))
        return uri

    @property
    def local_runs_dir(self) -> Path:
        """config.yml's local.runs_dir: one folder per local run, relative to the project root."""
        return self.root / str(self.setting("local", "runs_dir"))

    @property
    def local_artifacts_dir(self) -> Path:
        return self.root / LOCAL_ARTIFACTS_DIR

    def local_outputs(self) -> list[Path]:
        """What local runs leave behind: their folders, the artifacts, and a SQLite MLflow store with its lock."""
        outputs = [self.local_runs_dir, self.local_artifacts_dir]
        prefix = "sqlite:///"
        if self.local_tracking_uri.startswith(prefix):
            database = Path(self.local_tracking_uri.removeprefix(prefix))
            outputs += [database, database.with_name(database.name + ".lock")]
        return outputs

    def pipeline_inputs_with(self, overrides: dict[str, Any] | None) -> dict[str, Any]:
        """The pipeline's parameters with ``overrides`` applied; an unknown name is an error."""
        parameters = self.pipeline_inputs()
        unknown = sorted(set(overrides or {}) - set(parameters))
        if unknown:
            raise SettingsError(f"unknown pipeline parameter {unknown[0]!r}; parameters are: {', '.join(parameters)}")
        merged = {**parameters, **(overrides or {})}
        return {name: column_input(name, value) if name in COLUMN_INPUTS else value for name, value in merged.items()}

    def pipeline_inputs(self) -> dict[str, Any]:
        """The pipeline's parameters, as config.yml sets them (the data input is added by the caller), column names
        in plain text; ``pipeline_inputs_with`` gives them as the steps take them."""
        model = self.setting("model")
        features = self.config.get("features") or {}
        return {
            "target_column": self.setting("target_column"),
            # Unset (None) lets data_prep infer them.
            "numeric_columns": features.get("numeric") or None,
            "categorical_columns": features.get("categorical") or None,
            "test_size": self.setting("test_size"),
            "validation_size": self.setting("validation_size"),
            "random_seed": self.setting("random_seed"),
            "model_type": model["type"],
            # Left out of config.yml, a hyperparameter takes regressors.py's default.
            **{name: model.get(name, declared.default) for name, declared in self.regressors.HYPERPARAMETERS.items()},
            "registered_model_name": self.setting("azure", "registered_model_name"),
            "min_r2": self.setting("registration", "min_r2"),
        }


LOCAL_QUERIES = {
    "runs-dir": lambda settings: [settings.local_runs_dir],
    "tracking-uri": lambda settings: [settings.local_tracking_uri],
    "local-outputs": Settings.local_outputs,
}


def main(argv: Sequence[str] | None = None) -> int:
    query = list(sys.argv[1:] if argv is None else argv)
    if len(query) != 1 or query[0] not in LOCAL_QUERIES:
        usage = f"python -m {{ cookiecutter.__package_name }}.settings {' | '.join(LOCAL_QUERIES)}"
        print(f"error: expected one of: {usage}", file=sys.stderr)
        return 2
    try:
        values = LOCAL_QUERIES[query[0]](Settings.load())
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(str(value) for value in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
