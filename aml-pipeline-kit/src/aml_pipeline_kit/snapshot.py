"""A step's code as Azure ML snapshots it: the component's code folder, and each of its ``additional_includes``.

azure-ai-ml merges them before it uploads a component (``AdditionalIncludes.merge_local_code_and_additional_includes``
in azure/ai/ml/entities/_component/_additional_includes.py): the code folder's content at the root, then each
include copied there under its own name, a file as a file and a folder as a folder (merged into one of the same
name); ``x.zip`` that does not exist beside a folder ``x`` is that folder zipped. The local runner gives a step the
same files, in a copy of its own under the run folder; the component's folders stay as they are.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .plan import PlanError, Step

IGNORED_CODE_PARTS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache"})
IGNORED = shutil.ignore_patterns(*IGNORED_CODE_PARTS, "*.pyc")


def included(include: Path) -> Path:
    """What an additional include copies: the file or folder it names, or the folder ``x`` that ``x.zip`` zips."""
    if include.suffix == ".zip" and not include.exists() and include.with_suffix("").is_dir():
        return include.with_suffix("")
    return include


def missing_include(step: Step) -> str | None:
    """The first additional include of ``step`` that is not there, in one line; None if all are."""
    for include in step.includes:
        if not included(include).exists():
            return f"step {step.name!r}: its additional include {include} does not exist"
    return None


def build_snapshot(step: Step, destination: Path) -> Path:
    """``destination`` filled with the step's code and additional includes; an empty folder for a step without
    either. ``PlanError`` if an include is missing (``check`` says so before a run starts)."""
    if problem := missing_include(step):
        raise PlanError(problem)
    if step.code is None:
        destination.mkdir(parents=True)
    else:
        shutil.copytree(step.code, destination, ignore=IGNORED)
    for include in step.includes:
        source, target = included(include), destination / include.name
        if source != include:  # a folder zipped, its own name at the top of the archive, as azure-ai-ml writes it
            shutil.make_archive(str(target.with_suffix("")), "zip", root_dir=source.parent, base_dir=source.name)
        elif source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    return destination


@contextmanager
def snapshot_folder(step: Step) -> Iterator[Path]:
    """A folder holding what the step's snapshot holds, to read: its code folder itself when it has no includes,
    otherwise a temporary snapshot. For a step with code."""
    assert step.code is not None, "a step without code has nothing to read"
    if not step.includes:
        yield step.code
        return
    with tempfile.TemporaryDirectory(prefix="snapshot-") as temporary:
        yield build_snapshot(step, Path(temporary) / step.code.name)
