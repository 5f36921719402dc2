"""config.yml as the pipelines' inputs: the target, the features, the split, the model and its hyperparameters
(declared in components/train/regressors.py), and what registration requires.

Column names come from the CSV and may hold anything: the steps receive them base64-encoded JSON, safe in any
command line, and decode them (components/common/argument_types.py).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.project import Project

# Pipeline inputs that carry column names. Given as text (-p), a list is comma-separated.
COLUMN_INPUTS = ("target_column", "numeric_columns", "categorical_columns")
AUTO = "auto"  # every candidate trained, the best by cross-validation on the train split kept


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


def regressors(project: Project) -> ModuleType:
    """components/train/regressors.py, the one declaration of the regressors and their hyperparameters."""
    path = project.root / "components" / "train" / "regressors.py"
    spec = importlib.util.spec_from_file_location("regressors", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise SettingsError(f"{path}: no such file (it declares the regressors)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


def model_candidates(project: Project) -> list[str]:
    """The model types ``auto`` chooses from: config.yml's model.candidates, by default every regressor."""
    declared = list(regressors(project).REGRESSORS)
    candidates = list(project.setting("model").get("candidates") or declared)
    if any(name not in declared for name in candidates):
        raise SettingsError(
            f"{project.config_file}: model.candidates {candidates} must list some of: {', '.join(declared)}"
        )
    return candidates


def pipeline_inputs(project: Project, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The training pipeline's parameters as config.yml sets them, with ``overrides`` (``-p``) applied, column names
    encoded as the steps take them; an unknown name, or a target that is also a feature, is an error."""
    model = project.setting("model")
    features = project.config.get("features") or {}
    hyperparameters = regressors(project).HYPERPARAMETERS
    parameters = {
        "target_column": project.setting("target_column"),
        # Unset (None) lets data_prep infer them.
        "numeric_columns": features.get("numeric") or None,
        "categorical_columns": features.get("categorical") or None,
        "test_size": project.setting("test_size"),
        "cv_folds": project.setting("cv_folds"),
        "random_seed": project.setting("random_seed"),
        "model_type": model["type"],
        # Left out of config.yml, a hyperparameter takes regressors.py's default.
        **{name: model.get(name, declared.default) for name, declared in hyperparameters.items()},
        "registered_model_name": project.setting("azure", "registered_model_name"),
        "min_r2": project.setting("registration", "min_r2"),
    }
    unknown = sorted(set(overrides or {}) - set(parameters))
    if unknown:
        raise SettingsError(f"unknown pipeline parameter {unknown[0]!r}; parameters are: {', '.join(parameters)}")
    merged = {**parameters, **(overrides or {})}
    check_target_not_a_feature(project, merged)
    merged["cv_folds"] = checked_folds(project, merged["cv_folds"])
    return {name: column_input(name, value) if name in COLUMN_INPUTS else value for name, value in merged.items()}


def checked_folds(project: Project, folds: Any) -> int | None:
    """cv_folds as the steps take it: a whole number of 2 or more, or unset (0 or null) for no cross-validation."""
    if folds is None or (folds == 0 and type(folds) is int):
        return None
    if type(folds) is not int or folds < 2:  # True is an int to Python, not a number of folds
        raise SettingsError(
            f"{project.config_file}: cv_folds {folds!r} must be a whole number of 2 or more (the folds the train split "
            "is cross-validated in, to choose a model or score a tuning trial), or 0 for none"
        )
    return folds


def check_target_not_a_feature(project: Project, parameters: dict[str, Any]) -> None:
    """The features were inferred from the CSV when the project was rendered: after a change of target, the new one is
    still listed among them (and the old one not), which data_prep would only find at run time."""
    target = str(parameters["target_column"])
    for kind in ("numeric", "categorical"):
        listed = parameters[f"{kind}_columns"]
        names = [part.strip() for part in listed.split(",")] if isinstance(listed, str) else list(listed or [])
        if target in map(str, names):
            raise SettingsError(
                f"{project.config_file}: target_column {target!r} is also listed in features.{kind}: remove it "
                "there (and list the former target if it should be a feature), or empty both features lists to "
                "infer them from the CSV on every run"
            )
