"""Reading the project's YAML files (config.yml, the specs in aml/), with one error for all that can go wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class SettingsError(ValueError):
    """config.yml or an aml/ spec is missing or malformed; the message says which and how."""


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: expected a mapping at the top level")
    return document
