"""Tuning's settings (config.yml's ``tuning`` section, checked) and its result: the best hyperparameters written into
config.yml's ``model`` section, where the training pipeline reads them and git shows what changed.

Plain YAML and text: nothing here imports azure-ai-ml (sweeps.py turns these settings into a sweep node's).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .config_files import SettingsError
from .project import Project
from .records import write_atomically

if TYPE_CHECKING:
    from .check.report import Finding

GOALS = ("minimize", "maximize")
SAMPLING = ("random", "grid", "bayesian")
POLICIES = ("bandit", "median_stopping", "truncation_selection")
COUNTS = ("max_total_trials", "max_concurrent_trials")


class TuningSettingError(SettingsError):
    """A value of config.yml's tuning section that tuning cannot use; ``key`` is the setting's key in config.yml."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def tuning_settings(project: Project) -> dict[str, Any]:
    """config.yml's tuning section, each value checked; TuningSettingError names the first wrong one."""
    tuning = project.setting("tuning")
    where = f"{project.root / 'config.yml'}: tuning"

    def refuse(name: str, allowed: str) -> TuningSettingError:
        value = tuning.get(name) if isinstance(tuning, dict) else tuning
        return TuningSettingError(f"{where}.{name} is {value!r}; allowed: {allowed}", name)

    if not isinstance(tuning, dict):
        raise TuningSettingError(f"{where} must be a mapping", "tuning")
    if not isinstance(tuning.get("primary_metric"), str) or not tuning["primary_metric"].strip():
        raise refuse("primary_metric", "the name of a metric each trial logs to MLflow")
    if tuning.get("goal") not in GOALS:
        raise refuse("goal", f"{', '.join(GOALS)} (the way primary_metric improves)")
    if tuning.get("sampling") not in SAMPLING:
        raise refuse("sampling", ", ".join(SAMPLING))
    for name in COUNTS:
        if isinstance(tuning.get(name), bool) or not isinstance(tuning.get(name), int) or tuning[name] < 1:
            raise refuse(name, "a whole number >= 1")
    timeout = tuning.get("timeout_minutes")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise refuse("timeout_minutes", "a number of minutes > 0")
    termination = tuning.get("early_termination")
    if termination is not None and (not isinstance(termination, dict) or termination.get("policy") not in POLICIES):
        raise refuse("early_termination", f"null, or a mapping whose policy is one of {', '.join(POLICIES)}")
    # Azure ML's Bayesian sampling takes no early-termination policy (the BayesianParameterSampling class,
    # https://learn.microsoft.com/python/api/azureml-train-core/azureml.train.hyperdrive.bayesianparametersampling);
    # azure-ai-ml builds such a sweep without a word, so it is refused here rather than by the service.
    if tuning["sampling"] == "bayesian" and termination is not None:
        raise TuningSettingError(
            f"{where}.early_termination.policy is {termination['policy']!r} with tuning.sampling 'bayesian'; "
            "Azure ML's Bayesian sampling supports no early termination: set early_termination to null, "
            "or sampling to random or grid",
            "early_termination",
        )
    return tuning


def tuning_findings(project: Project) -> list[Finding]:
    """``check``'s finding on config.yml's tuning section: its first value that tuning cannot use."""
    from .check.report import Finding, key_pattern, line_of

    config = project.root / "config.yml"
    try:
        tuning_settings(project)
    except TuningSettingError as error:
        hint = "config.yml's comments on the tuning section say what each setting takes"
        message = str(error).removeprefix(f"{config}: ")
        section = line_of(config, key_pattern("tuning")) or 0
        line = section if error.key == "tuning" else line_of(config, key_pattern(error.key), after=section)
        return [Finding(config, "tuning-settings", message, hint, line)]
    return []


MODEL_SECTION = re.compile(r"^model:[ \t]*(#.*)?$")


def tuned_config(config_file: Path, values: dict[str, Any]) -> str:
    """config.yml's text with ``values`` set in its ``model`` section, in place: the other lines, comments included,
    stay as they are. SettingsError, saying what to change, if the section is not a block of ``key: value`` lines."""
    unwritable = SettingsError(
        f"{config_file}: tune writes the model it finds into the `model:` section, which must be a block of "
        "`key: value` lines under `model:` (not `model: {...}` on one line): rewrite it so, then run tune"
    )
    lines = config_file.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((number for number, line in enumerate(lines) if MODEL_SECTION.match(line)), None)
    if start is None:
        raise unwritable
    end = next(
        (number for number in range(start + 1, len(lines)) if lines[number].strip() and not lines[number][0].isspace()),
        len(lines),
    )
    for name, value in values.items():
        setting = re.compile(rf"^(?P<indent>[ \t]+){re.escape(name)}:[ \t]*(?P<value>[^#\n]*?)(?P<comment>[ \t]*#.*)?$")
        rendered = yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()
        for number in range(start + 1, end):
            if match := setting.match(lines[number].rstrip("\n")):
                lines[number] = f"{match['indent']}{name}: {rendered}{match['comment'] or ''}\n"
                break
        else:
            lines.insert(end, f"  {name}: {rendered}\n")
            end += 1
    text = "".join(lines)
    written = (yaml.safe_load(text) or {}).get("model") or {}
    if any(written.get(name) != value for name, value in values.items()):
        raise unwritable
    return text


def write_tuned_model(config_file: Path, model_type: str, hyperparameters: dict[str, Any]) -> None:
    """Set ``model_type`` and its ``hyperparameters`` in config.yml's ``model`` section (``tuned_config``), written
    whole or not at all."""
    text = tuned_config(config_file, {"type": model_type, **hyperparameters})
    write_atomically(config_file, text)


# A setting the section does not hold: a sweep's winner may bring hyperparameters the section leaves to their defaults.
ABSENT_SETTING = "tuned_hyperparameter"


def refuse_unwritable_model_section(project: Project) -> None:
    """Before a sweep, not after it: SettingsError if config.yml's ``model`` section could not take the model it finds,
    tried with what the section holds now and a setting it does not hold yet."""
    model = project.setting("model")
    current = model if isinstance(model, dict) else {}
    tuned_config(project.config_file, {"type": current.get("type"), **current, ABSENT_SETTING: 1})


def write_tuned(project: Project, selection_dir: Path) -> None:
    """The tuned winner of ``selection_dir``'s selection.json into config.yml's model section."""
    selection = json.loads((selection_dir / "selection.json").read_text())
    winner = selection["winner"]
    values = selection["candidates"][winner]["hyperparameters"]
    write_tuned_model(project.root / "config.yml", winner, values)
    shown = ", ".join(f"{name}: {value}" for name, value in values.items())
    print(f"config.yml: model set to {winner} ({shown}); `git diff config.yml` shows the change, `make run` trains it")
