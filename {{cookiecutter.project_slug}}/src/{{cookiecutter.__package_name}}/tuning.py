"""Tuning's settings (config.yml's ``tuning`` section, checked) and its result: the best hyperparameters written into
config.yml's ``model`` section, where the training pipeline reads them and git shows what changed.

Plain YAML and text: nothing here imports azure-ai-ml (pipeline.py turns these settings into a sweep node).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from aml_pipeline_kit.records import write_atomically

from .settings import Settings, SettingsError

# What train.py logs on the validation rows, and the goal each is optimised towards.
METRICS = {"validation_rmse": "minimize", "validation_r2": "maximize"}
SAMPLING = ("random", "grid", "bayesian")
POLICIES = ("bandit", "median_stopping", "truncation_selection")
COUNTS = ("max_total_trials", "max_concurrent_trials")


def tuning_settings(settings: Settings) -> dict[str, Any]:
    """config.yml's tuning section, each value checked; SettingsError names the first wrong one."""
    tuning = settings.setting("tuning")
    where = f"{settings.root / 'config.yml'}: tuning"

    def refuse(name: str, allowed: str) -> SettingsError:
        value = tuning.get(name) if isinstance(tuning, dict) else tuning
        return SettingsError(f"{where}.{name} is {value!r}; allowed: {allowed}")

    if not isinstance(tuning, dict):
        raise SettingsError(f"{where} must be a mapping")
    if tuning.get("primary_metric") not in METRICS:
        raise refuse("primary_metric", ", ".join(METRICS))
    if tuning.get("goal") != METRICS[tuning["primary_metric"]]:
        raise refuse("goal", f"{METRICS[tuning['primary_metric']]} (the way {tuning['primary_metric']} improves)")
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
    return tuning


MODEL_SECTION = re.compile(r"^model:[ \t]*(#.*)?$")


def write_tuned_model(config_file: Path, model_type: str, hyperparameters: dict[str, Any]) -> None:
    """Set ``model_type`` and its ``hyperparameters`` in config.yml's ``model`` section, in place: the other lines,
    comments included, stay as they are. Written whole or not at all; SettingsError if the section is not a block
    of ``key: value`` lines."""
    lines = config_file.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((number for number, line in enumerate(lines) if MODEL_SECTION.match(line)), None)
    if start is None:
        raise SettingsError(f"{config_file}: no `model:` section (a block of `key: value` lines) to write into")
    end = next(
        (number for number in range(start + 1, len(lines)) if lines[number].strip() and not lines[number][0].isspace()),
        len(lines),
    )
    values = {"type": model_type, **hyperparameters}
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
        raise SettingsError(f"{config_file}: its `model:` section is not a block of `key: value` lines; set {values}")
    write_atomically(config_file, text)


def write_tuned(settings: Settings, selection_dir: Path) -> None:
    """The tuned winner of ``selection_dir``'s selection.json into config.yml's model section."""
    selection = json.loads((selection_dir / "selection.json").read_text())
    winner = selection["winner"]
    values = selection["candidates"][winner]["hyperparameters"]
    write_tuned_model(settings.root / "config.yml", winner, values)
    shown = ", ".join(f"{name}: {value}" for name, value in values.items())
    print(f"config.yml: model set to {winner} ({shown}); `git diff config.yml` shows the change, `make run` trains it")
