"""components/train/regressors.py is the one declaration of the regressors and their hyperparameters: what must
repeat it in YAML (train.yml, select.yml, config.yml) agrees with it, and each failure says what to add where."""

import math
import re

import yaml
from conftest import COMPONENTS_DIR, PROJECT_ROOT

from aml_pipeline_kit.project import Project

from diabetes_blood_pressure.parameters import regressors

DECLARED = regressors(Project.load(PROJECT_ROOT))
REGRESSORS = DECLARED.REGRESSORS
HYPERPARAMETERS = DECLARED.HYPERPARAMETERS
TRAIN = yaml.safe_load((COMPONENTS_DIR / "train" / "train.yml").read_text())
AML_TYPES = {int: "integer", float: "number"}


def test_train_yml_offers_every_regressor() -> None:
    enum = TRAIN["inputs"]["model_type"]["enum"]
    assert enum == list(REGRESSORS), f"train.yml: set model_type's enum to {list(REGRESSORS)}"


def test_train_yml_declares_every_hyperparameter_as_regressors_py_does() -> None:
    for name, declared in HYPERPARAMETERS.items():
        spec = TRAIN["inputs"].get(name)
        assert spec is not None, f"train.yml: declare input {name!r} (and pass --{name.replace('_', '-')} in command)"
        assert spec["type"] == AML_TYPES[declared.kind], f"train.yml: {name} must be of type {AML_TYPES[declared.kind]}"
        assert spec.get("optional", False) == (declared.default is None), f"train.yml: {name} optional means no default"
        assert spec.get("default") == declared.default, f"train.yml: {name}'s default must be {declared.default}"
        assert spec.get("min") == declared.low, f"train.yml: {name}'s min must be {declared.low}"
        assert spec.get("max", math.inf) == declared.high, f"train.yml: {name}'s max must be {declared.high}"


def test_train_yml_passes_every_hyperparameter() -> None:
    command = TRAIN["command"]
    for name, declared in HYPERPARAMETERS.items():
        passed = f"--{name.replace('_', '-')} ${{{{inputs.{name}}}}}"
        wanted = f"$[[{passed}]]" if declared.default is None else passed
        assert wanted in command, f"train.yml: the command must pass {wanted}"


def test_every_regressor_takes_declared_hyperparameters_and_search_values_within_bounds() -> None:
    for name, regressor in REGRESSORS.items():
        assert set(regressor.hyperparameters) <= set(HYPERPARAMETERS), name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"{name}: a model type is a lowercase word (a shell word too)"
    for name, declared in HYPERPARAMETERS.items():
        for value in declared.search:
            assert isinstance(value, declared.kind), f"{name}: search value {value!r} is not a {declared.kind.__name__}"
            assert declared.low <= value <= declared.high, f"{name}: search value {value} outside its bounds"
        assert len(set(declared.search)) == len(declared.search), f"{name}: a search value is listed twice"


def test_select_has_a_port_for_every_candidate() -> None:
    select = yaml.safe_load((COMPONENTS_DIR / "select" / "select.yml").read_text())
    ports = [name for name in select["inputs"] if name.startswith("candidate_")]
    assert len(ports) >= len(REGRESSORS), "select.yml: add candidate_<n> inputs, one per regressor"


def test_config_yml_sets_only_declared_hyperparameters() -> None:
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())
    settings = set(config["model"]) - {"type", "candidates"}
    assert settings <= set(HYPERPARAMETERS), f"config.yml: unknown hyperparameters {settings - set(HYPERPARAMETERS)}"
    assert config["model"]["type"] in [*REGRESSORS, "auto"]
