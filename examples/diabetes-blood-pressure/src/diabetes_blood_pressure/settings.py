"""The project's settings: ``config.yml`` and the Azure ML specs in ``aml/``, read once."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from aml_pipeline_kit.config_files import SettingsError, read_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AML_DIR = PROJECT_ROOT / "aml"
COMPONENTS_DIR = PROJECT_ROOT / "components"


# Pipeline inputs that carry column names, which come from the CSV and may hold anything: the steps receive them
# base64-encoded JSON, safe in any command line. Given as text (-p), a list is comma-separated.
COLUMN_INPUTS = ("target_column", "numeric_columns", "categorical_columns")

AUTO = "auto"  # every candidate trained, the best on the validation split kept


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
    def local_tracking_uri(self) -> str:
        """The MLflow store of local runs; a relative SQLite path is taken from the project root."""
        uri = str(self.setting("local", "tracking_uri"))
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not Path(uri.removeprefix(prefix)).is_absolute():
            return prefix + str(self.root / uri.removeprefix(prefix))
        return uri

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
