"""The convention by which a project names its pipelines and settings to the engine.

A project is a folder holding ``config.yml`` (every setting), ``components/`` (one folder per step: spec and
script), ``aml/`` (the Azure ML specs: ``compute.yml``, ``environment.yml``, ``data.yml``, and for ``deploy`` and
``monitor --schedule`` ``endpoint.yml``, ``deployment.yml``, ``monitor-schedule.yml``) and a ``pyproject.toml``
whose table ``[tool.aml-pipeline-kit]`` names the module that registers its pipelines::

    [tool.aml-pipeline-kit]
    pipelines = "my_project.pipeline"   # a module under src/ (or installed) with register_pipelines()

``register_pipelines(project)`` returns the project's pipeline builders by role, each a function that returns the
azure-ai-ml ``PipelineJob`` of a ``@dsl.pipeline`` graph, given the ``Input`` s the engine makes for where it runs
(a file on this machine, or a data asset / registered model on Azure ML):

- ``training(project, data, overrides)``: ``run``, ``submit``; outputs ``model``, ``report`` (``metrics.json``),
  ``decision`` (``decision.json``);
- ``tuning(project, data, overrides)``, optional: ``tune``; also outputs ``selection`` (``selection.json``, whose
  winner ``tune`` writes into config.yml's ``model`` section). A training pipeline may output it too: ``run``
  prints its ``candidates``, each with ``cv_rmse`` and ``cv_rmse_std`` (the cross-validation folds' mean and
  standard deviation), ``cv_r2`` and ``hyperparameters``;
- ``scoring(project, model, data)``: ``score``; outputs ``predictions``, a folder of CSV files (one per mini-batch of
  a parallel step; ``score --local`` counts and shows the rows of them all); ``data`` a file, a folder or an MLTable
  (``rows``);
- ``monitoring(project, model, training_data, batch)``: ``monitor``; outputs ``report``.

A role the project cannot offer as it stands may map to a sentence saying why (``"tuning": "... set cv_folds to 2 or
more"``): the command of that role says it, and ``check`` leaves the role out.

Kedro's ``settings.py`` and ``pipeline_registry.py`` are the model: the project holds its graphs and config, the
engine finds them by this one table.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config_files import YAML_SUFFIXES, SettingsError, check_yaml_files, read_yaml
from .data_refs import reference_key
from .registry import SQLITE_PREFIX, sqlite_database

if TYPE_CHECKING:
    from azure.ai.ml import Input
    from azure.ai.ml.entities import PipelineJob

    Builder = Callable[..., PipelineJob]

ROOT_VARIABLE = "AML_PIPELINE_KIT_PROJECT"  # set: the project's folder, wherever the command runs from
TOOL_TABLE = "aml-pipeline-kit"
ROLES = ("training", "tuning", "scoring", "monitoring")
LOCAL_ARTIFACTS_DIR = "mlartifacts"  # under the project root: the artifacts of local runs' MLflow runs


# Azure ML's rule for an asset's name, a registered model's included; MLflow's local registry takes more.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}")
MODEL_NAME_RULE = "1-255 letters, digits, underscores or hyphens, starting with a letter or digit"


def model_name_problem(name: object) -> str | None:
    """Why the register step could not register a model in an Azure ML workspace as ``name``; None if it could."""
    if isinstance(name, str) and MODEL_NAME.fullmatch(name):
        return None
    return f"must be {MODEL_NAME_RULE} (Azure ML's rule for a model's name)"


def is_project(folder: Path) -> bool:
    return (folder / "config.yml").is_file() and (folder / "components").is_dir()


def find_project_root(cwd: Path, environ: Mapping[str, str]) -> Path | None:
    """``$AML_PIPELINE_KIT_PROJECT`` if set, else the nearest folder at or above ``cwd`` holding config.yml and
    components/; None if there is none."""
    if environ.get(ROOT_VARIABLE):
        return Path(environ[ROOT_VARIABLE]).resolve()
    start = cwd.resolve()
    return next((folder for folder in (start, *start.parents) if is_project(folder)), None)


@dataclass(frozen=True)
class Project:
    """A project's folder and its settings (config.yml, aml/compute.yml, aml/data.yml), read once."""

    root: Path
    config: dict[str, Any]
    compute: dict[str, Any]
    data_asset: dict[str, Any]
    pipelines_module: str = field(compare=False)

    @classmethod
    def load(cls, root: Path | None = None) -> Project:
        found = root or find_project_root(Path.cwd(), os.environ)
        if found is None or not is_project(found):
            where = found or Path.cwd()
            raise SettingsError(
                f"{where} is not a project (no config.yml and components/ here or above): run from within one, "
                f"or set {ROOT_VARIABLE} to its folder"
            )
        specs = (path for folder in ("aml", "components") for path in sorted((found / folder).rglob("*")))
        check_yaml_files(path for path in specs if path.suffix in YAML_SUFFIXES)  # before azure-ai-ml reads one
        return cls(
            root=found,
            config=read_yaml(found / "config.yml"),
            compute=read_yaml(found / "aml" / "compute.yml"),
            data_asset=read_yaml(found / "aml" / "data.yml"),
            pipelines_module=registered_module(found / "pyproject.toml"),
        )

    def setting(self, *keys: str) -> Any:
        """A value of config.yml by its path of keys, e.g. ``setting("azure", "workspace")``."""
        node: Any = self.config
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                raise SettingsError(f"{self.root / 'config.yml'}: missing setting {'.'.join(keys[: depth + 1])}")
            node = node[key]
        return node

    @property
    def config_file(self) -> Path:
        return self.root / "config.yml"

    @cached_property
    def registered(self) -> dict[str, Builder | str]:
        """What the project's ``register_pipelines(project)`` returns: a builder, or why there is none, by role."""
        self.importable()
        try:
            module = importlib.import_module(self.pipelines_module)
        except ImportError as error:
            raise SettingsError(f"{self.pipelines_setting} cannot be imported ({error})") from None
        register = getattr(module, "register_pipelines", None)
        if not callable(register):
            raise SettingsError(f"{module.__file__}: defines no register_pipelines(project)")
        registered = dict(register(self))
        unknown = sorted(set(registered) - set(ROLES))
        if unknown or not callable(registered.get("training")):
            raise SettingsError(
                f"{module.__file__}: register_pipelines() must return a training pipeline and may return "
                f"{', '.join(ROLES[1:])}; it returned {', '.join(registered) or 'none'}"
            )
        for role, entry in registered.items():
            if not (callable(entry) or isinstance(entry, str)):
                raise SettingsError(
                    f"{module.__file__}: register_pipelines()'s {role} is a {type(entry).__name__}: it must be a "
                    "function that builds the pipeline, or a sentence saying why the project has none"
                )
        return registered

    @cached_property
    def pipelines(self) -> dict[str, Builder]:
        """The project's pipeline builders by role, the roles it offers as it stands."""
        return {role: entry for role, entry in self.registered.items() if callable(entry)}

    def pipeline(self, role: str) -> Builder:
        if role in self.pipelines:
            return self.pipelines[role]
        reason = self.registered.get(role)
        if isinstance(reason, str):
            raise SettingsError(f"this project has no {role} pipeline as it stands: {reason}")
        raise SettingsError(f"this project registers no {role} pipeline (register_pipelines in {self.pipelines_file})")

    def importable(self) -> None:
        """The project's src/ on the module path: a project run where it is, not installed, as Kedro bootstraps one."""
        source = str(self.root / "src")
        if (self.root / "src").is_dir() and source not in sys.path:
            sys.path.insert(0, source)

    @property
    def pipelines_setting(self) -> str:
        return f"{self.root / 'pyproject.toml'}: [tool.{TOOL_TABLE}] pipelines = {self.pipelines_module!r}"

    @cached_property
    def pipelines_file(self) -> Path:
        """The file of the module that registers the pipelines, found without importing it (azure-ai-ml: seconds):
        where ``check`` reports findings on the graphs, and whose package the plan cache keys on."""
        self.importable()
        try:
            spec = importlib.util.find_spec(self.pipelines_module)
        except ImportError as error:
            raise SettingsError(f"{self.pipelines_setting} cannot be imported ({error})") from None
        if spec is None or spec.origin is None:
            raise SettingsError(f"{self.pipelines_setting}: no such module")
        return Path(spec.origin)

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
        return substitutes_from(self.config, self.root)

    @property
    def local_tracking_uri(self) -> str:
        """The MLflow store of local runs; a relative SQLite path is taken from the project root."""
        return tracking_uri_from(self.config, self.root)

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
        if (database := sqlite_database(self.local_tracking_uri)) is not None:
            outputs += [database, database.with_name(database.name + ".lock")]
        return outputs

    def training_job(self, data: Input, overrides: dict[str, Any] | None = None, tune: bool = False) -> PipelineJob:
        return self.pipeline("tuning" if tune else "training")(self, data, overrides)


def registered_module(pyproject: Path) -> str:
    """The module ``[tool.aml-pipeline-kit] pipelines`` names in ``pyproject``."""
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get(TOOL_TABLE, {})
    except FileNotFoundError:
        raise SettingsError(f"{pyproject}: no such file (its [tool.{TOOL_TABLE}] names the pipelines)") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{pyproject}: not valid TOML ({error})") from None
    module = table.get("pipelines") if isinstance(table, dict) else None
    if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
        raise SettingsError(
            f'{pyproject}: [tool.{TOOL_TABLE}] must set pipelines = "<package>.<module>" (found {module!r})'
        )
    return module


def substitutes_from(config: dict[str, Any], root: Path) -> dict[str, Path]:
    substitutes = (config.get("local") or {}).get("data_substitutes") or {}
    if not isinstance(substitutes, dict) or not all(isinstance(path, str) for path in substitutes.values()):
        raise SettingsError(f"{root / 'config.yml'}: local.data_substitutes must map data references to local paths")
    return {reference_key(str(reference)): root / path for reference, path in substitutes.items()}


def tracking_uri_from(config: dict[str, Any], root: Path) -> str:
    uri = str((config.get("local") or {}).get("tracking_uri") or f"{SQLITE_PREFIX}mlruns.db")
    database = sqlite_database(uri)
    if database is not None and not database.is_absolute():
        return SQLITE_PREFIX + str(root / database)
    return uri


# --- where a graph's data and model come from -------------------------------------------------------------------


def rows(data: str | Path) -> Input:
    """Rows as a graph's input: on this machine (made absolute: the steps run in their own folders) a file, a folder
    of files or an MLTable's folder (``rows_type``); or a reference Azure ML resolves (a data asset, a datastore
    path), a file."""
    from azure.ai.ml import Input

    if isinstance(data, Path):
        return Input(type=rows_type(data), path=str(data.resolve()))
    return Input(type="uri_file", path=data)


def rows_type(data: Path) -> str:
    """The Azure ML type of rows on this machine: ``mltable`` for a folder holding an ``MLTable`` file (Microsoft's
    table definition), ``uri_folder`` for any other folder, ``uri_file`` for a file."""
    if not data.is_dir():
        return "uri_file"
    return "mltable" if (data / "MLTable").is_file() else "uri_folder"


def model_input(model: str | Path | None, project: Project) -> Input:
    """The model a scoring or monitoring graph runs: a model folder on this machine (made absolute), or a registered
    model (``azureml:<name>@latest`` or ``:<version>``), by default the newest version of the one the training
    pipeline registers."""
    from azure.ai.ml import Input

    if isinstance(model, Path):
        return Input(type="mlflow_model", path=str(model.resolve()))
    return Input(type="mlflow_model", path=model or registered_model_uri(project))


def registered_model_uri(project: Project) -> str:
    """The newest version of the model the training pipeline registers, as Azure ML names it."""
    return f"azureml:{project.setting('azure', 'registered_model_name')}@latest"
