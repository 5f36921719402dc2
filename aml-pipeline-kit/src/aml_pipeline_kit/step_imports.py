"""What the step host loads before steps ask for it: the third-party modules the steps' scripts import, and
MLflow's table of installed distributions. ``check`` reads the same imports against the environment's packages."""

from __future__ import annotations

import ast
import contextlib
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

STANDARD_LIBRARY = frozenset(sys.stdlib_module_names)
# Component definitions import azure-ai-ml to describe their step; steps never need it, and it costs seconds.
NEVER_PRELOADED = frozenset({"azure"})


def script_imports(folders: Iterable[Path], imported_names: bool = False) -> list[str]:
    """Top-level third-party modules imported by the Python files in ``folders`` (their own modules excluded).

    With ``imported_names``, ``X.Y`` too for every ``from X import Y``: Y may be a submodule that importing X does not
    load (``from matplotlib import pyplot``); ``preload`` tells which.
    """
    found: set[str] = set()
    local: set[str] = set()
    for folder in folders:
        names, stems = folder_imports(folder, imported_names)
        found |= names
        local |= stems
    skipped = STANDARD_LIBRARY | NEVER_PRELOADED | local
    return sorted(name for name in found if name.split(".")[0] not in skipped)


def folder_imports(folder: Path, imported_names: bool) -> tuple[set[str], set[str]]:
    """What the Python files in ``folder`` import (see ``script_imports``), and their own module names."""
    found: set[str] = set()
    local: set[str] = set()
    for path in folder.glob("*.py"):
        local.add(path.stem)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                if imported_names:
                    found.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return found, local


def steps_imports(folders: Iterable[Path]) -> list[str]:
    """What the step host loads for steps whose code comes from ``folders``, given in the order the steps start: the
    first folder's modules first (parents before their submodules), each module once. A folder whose scripts cannot
    be read is passed over: its step says what is wrong with them when it runs."""
    readable: dict[Path, set[str]] = {}
    local: set[str] = set()
    for folder in folders:
        try:
            readable[folder], stems = folder_imports(folder, imported_names=True)
        except (SyntaxError, ValueError, OSError):
            continue
        local |= stems
    skipped = STANDARD_LIBRARY | NEVER_PRELOADED | local
    ordered = (sorted(name for name in names if name.split(".")[0] not in skipped) for names in readable.values())
    return list(dict.fromkeys(name for names in ordered for name in names))


def preload(modules: Iterable[str]) -> None:
    """Import what the steps import, parents first (``modules`` sorted); a name its parent module has already (a
    function, a loaded submodule) is skipped. One that fails to import is left for its step to report."""
    for name in modules:
        parent, _, attribute = name.rpartition(".")
        if parent in sys.modules and hasattr(sys.modules[parent], attribute):
            continue
        try:
            importlib.import_module(name)
        except Exception:  # the step itself will show the real error
            continue


def warm_mlflow() -> None:
    """Fill, once for every step, the table of installed distributions that MLflow builds in each process that
    saves or loads a model (to warn of mismatched requirements): it reads every installed distribution's file list,
    tenths of a second that each such step would pay again."""
    if "mlflow" not in sys.modules:
        return
    with contextlib.suppress(Exception):  # an MLflow without it: its steps build the table themselves, as before
        from mlflow.utils import requirements_utils

        requirements_utils._init_packages_to_modules_map()
