"""A step's code as azure-ai-ml uploads it: which files, by which names, from where.

azure-ai-ml uploads a component's code folder with its ignore file: ``.amlignore``, or else ``.gitignore``, in that
folder only (``get_ignore_file``), its git patterns matched file by file against each file's path from the folder,
``__pycache__`` always left out (``ComponentIgnoreFile``). It walks into linked folders and uploads what a link
points at, wherever it lies (``get_upload_files_from_folder``, ``traverse_directory``). With
``additional_includes``, it first merges the code and each include into a temporary folder
(``AdditionalIncludes.merge_local_code_and_additional_includes``): the code's content at the root, honouring the
ignore file of every folder on the way down; each include copied there under its own name with the code's ignore
file and its own; ``x.zip`` that does not exist beside a folder ``x`` that folder zipped; then it uploads that
folder with its root's ignore file. The local runner gives a step the same files, in a copy of its own under the
run folder (the source folders stay as they are), and keys reuse on them; a test holds this to azure-ai-ml's own
listing. Two things are refused instead of copied, in one line: what azure-ai-ml itself cannot upload (a broken
link, a link loop, a device or pipe, a file you may not read), and any file of a system folder (``SYSTEM_FOLDERS``,
reached through ``code:``, an include or a link), which would carry the machine's configuration and secrets into
the run folder and the workspace. The local runs' folder is never copied into a snapshot, which lives inside it.
A folder that the ignore files leave out whole is not walked (azure-ai-ml walks it, to leave out each file).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .plan import PlanError, Step

IGNORE_FILES = (".amlignore", ".gitignore")  # the first that exists in a folder is its ignore file
ALWAYS_IGNORED = ("__pycache__",)
# Configuration and secrets, devices, kernel and runtime state: no step's code lives there.
SYSTEM_FOLDERS = ("/etc", "/proc", "/sys", "/dev", "/boot", "/run")
PROBE = "\0"  # a name no file has: a folder whose ``<folder>/<PROBE>`` a pattern matches at the folder holds none


@functools.cache
def wildmatch() -> ModuleType:
    """azure-ai-ml's own git pattern matching (a copy of pathspec's), loaded alone: importing it as
    ``azure.ai.ml._utils._pathspec`` would import all of azure-ai-ml first, seconds that a cached plan spares."""
    package = importlib.util.find_spec("azure.ai.ml")
    assert package is not None and package.submodule_search_locations, "azure-ai-ml is a dependency of the project"
    location = Path(package.submodule_search_locations[0]) / "_utils" / "_pathspec.py"
    spec = importlib.util.spec_from_file_location(f"{__package__}._azure_pathspec", location)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


@functools.cache
def system_folders() -> tuple[Path, ...]:
    return tuple(dict.fromkeys(Path(folder).resolve() for folder in SYSTEM_FOLDERS))


@dataclass(frozen=True)
class IgnoreRules:
    """azure-ai-ml's ``ComponentIgnoreFile``: a folder's ignore file (its patterns, names taken from ``base``) and
    those of the folders above it that it was merged with (``outer``): a file any of them leaves out is left out."""

    base: str
    patterns: tuple[Any, ...]  # GitWildMatchPattern, comments and blank lines left out
    outer: tuple[IgnoreRules, ...] = ()

    @classmethod
    def of(cls, folder: Path, outer: tuple[IgnoreRules, ...] = ()) -> IgnoreRules:
        """The rules of ``folder``: its ignore file's (the first of ``IGNORE_FILES`` there) and ``outer``'s."""
        candidates = [(folder / name).resolve() for name in IGNORE_FILES] if folder.is_dir() else []
        return cls(str(folder), patterns(next((file for file in candidates if file.exists()), None)), outer)

    def rebased(self, folder: Path) -> IgnoreRules:
        """The same patterns, names taken from ``folder``: how the code's ignore file applies to an include."""
        return IgnoreRules(str(folder), self.patterns, self.outer)

    def merged(self, path: Path) -> IgnoreRules:
        """What applies under ``path``: for a folder, its own ignore file with this one around it."""
        return self if path.is_file() else IgnoreRules.of(path, (*self.outer, self))

    def excludes(self, path: Path | str) -> bool:
        return any(rules.excludes(path) for rules in self.outer) or self.matches(self.name(path))

    def excludes_all_under(self, folder: Path | str) -> bool:
        """Whether every file under ``folder`` is left out: a pattern takes the folder whole (its ``/`` and all that
        follows) and no pattern after it brings a file back (``!``)."""
        if any(rules.excludes_all_under(folder) for rules in self.outer):
            return True
        name = self.name(folder)
        if name == ".":
            return False
        covering = [index for index, pattern in enumerate(self.patterns) if takes_whole(pattern, name)]
        return bool(covering) and all(pattern.include for pattern in self.patterns[covering[-1] :])

    def matches(self, name: str) -> bool:
        """The last pattern that matches ``name`` decides; none: kept."""
        matched = False
        for pattern in self.patterns:
            if pattern.match_file(name) is not None:
                matched = pattern.include
        return matched

    def name(self, path: Path | str) -> str:
        return wildmatch().normalize_file(os.path.relpath(os.path.abspath(path), self.base))


def patterns(ignore_file: Path | None) -> tuple[Any, ...]:
    """The patterns of ``ignore_file`` (lines read as azure-ai-ml reads them), and what is always left out."""
    lines = list(ALWAYS_IGNORED)
    try:
        if ignore_file is not None:
            with open(ignore_file, encoding="utf-8-sig") as handle:
                lines[:0] = [line.rstrip() for line in handle if line]
        compiled = [wildmatch().GitWildMatchPattern(line) for line in lines]
    except ValueError as error:  # not UTF-8, or a line that is no git pattern: azure-ai-ml fails on it too
        raise PlanError(f"{ignore_file}: not an ignore file azure-ai-ml can read ({error})") from None
    return tuple(pattern for pattern in compiled if pattern.include is not None)


def takes_whole(pattern: Any, name: str) -> bool:
    """Whether ``pattern`` matches every path under the folder ``name``: it matches ``<name>/<probe>`` with its
    folder separator at or before the folder's end, everything after which it takes as it comes."""
    match = pattern.regex.match(f"{name}/{PROBE}")
    if match is None:
        return False
    if "ps_d" not in pattern.regex.groupindex:  # `**`: every path
        return True
    return 0 <= match.start("ps_d") <= len(name)


@dataclass(frozen=True)
class Zipped:
    """An include ``x.zip`` made from the folder ``x``: the folder's entry, then each file, as azure-ai-ml zips it."""

    folder: Path
    files: tuple[tuple[Path, str], ...]  # a file and its name in the archive


Source = Path | Zipped
Snapshot = dict[str, Source]  # a file's name in the snapshot -> where its content comes from


class Lister:
    """Lists one step's snapshot, refusing in one line what azure-ai-ml cannot upload or a snapshot must not hold."""

    def __init__(self, step: Step, leave_out: Path | None) -> None:
        self.step = step
        self.leave_out = leave_out.resolve() if leave_out else None

    def refuse(self, path: Path, problem: str) -> PlanError:
        return PlanError(f"step {self.step.name!r}: its code reaches {path}, {problem}")

    def source(self, path: Path) -> Path:
        """The file ``path`` stands for (a link followed to its end), once it is known to be one to copy."""
        try:
            source = path.resolve()
        except RuntimeError:  # Python 3.11's word for a link loop
            raise self.refuse(path, "a link that leads back to itself (a loop)") from None
        self.check_place(path, source)
        if not source.exists():
            raise self.refuse(path, f"a link to {source}, which does not exist: azure-ai-ml cannot upload it")
        if not stat.S_ISREG(source.stat().st_mode):
            raise self.refuse(path, "neither a file nor a folder (a device, a pipe or a socket): list it in .amlignore")
        if not os.access(source, os.R_OK):
            raise self.refuse(path, "which you may not read: azure-ai-ml cannot upload it either")
        return source

    def check_place(self, path: Path, real: Path) -> None:
        for folder in system_folders():
            if real.is_relative_to(folder):
                where = "" if real == folder else f"{'inside' if path == real else 'a link into'} {folder}, "
                raise self.refuse(
                    path,
                    f"{where}a system folder (configuration and secrets, devices, kernel state): "
                    "point code and additional_includes at folders of your own",
                )

    def entered(self, folder: Path, real: Path, above: frozenset[Path]) -> bool:
        """Whether to list ``folder`` (``real``, resolved): not the local runs' folder; a loop or a system folder is
        refused."""
        if real in above:
            raise self.refuse(folder, "a link to a folder that holds it (a loop): azure-ai-ml would follow it again")
        self.check_place(folder, real)
        return real != self.leave_out

    def uploaded(self, folder: Path, rules: IgnoreRules) -> dict[str, Path]:
        """``get_upload_files_from_folder``: every file under ``folder``, links followed, by its name from there,
        each one left out as ``rules`` say of its folder (resolved) and its own name."""
        found: dict[str, Path] = {}

        def walk(directory: Path, prefix: str, above: frozenset[Path]) -> None:
            real = directory.resolve()
            if not self.entered(directory, real, above):
                return
            for entry in sorted(os.scandir(directory), key=lambda entry: entry.name):
                path = Path(entry.path)
                if is_folder(entry):
                    if not rules.excludes_all_under(path.resolve()):
                        walk(path, f"{prefix}{entry.name}/", above | {real})
                elif not rules.excludes(real / entry.name):
                    found[prefix + entry.name] = self.source(path)

        walk(folder, "", frozenset())
        return found

    def merged(self) -> Snapshot:
        """``merge_local_code_and_additional_includes``, then the upload of the merged folder."""
        code = self.step.code
        code_rules = IgnoreRules.of(code) if code else IgnoreRules("/", patterns(None))
        merged: Snapshot = {}
        if code is not None:
            self.copied(code, "", code_rules, merged, frozenset())
        for include in self.step.includes:
            rules, source = code_rules.rebased(include.parent), included(include)
            if source != include:  # a folder zipped, with the files an upload of it takes
                files = sorted(self.uploaded(source, rules.merged(source)).values(), key=str)
                merged[include.name] = Zipped(
                    source, tuple((file, os.path.relpath(file, source.parent)) for file in files)
                )
            else:
                self.copied(source, include.name, rules.merged(source), merged, frozenset())
        root_ignore_file = next((merged[name] for name in IGNORE_FILES if isinstance(merged.get(name), Path)), None)
        root = IgnoreRules("/", patterns(root_ignore_file))  # the merged folder's, copied from the code's
        return {name: source for name, source in merged.items() if not root.matches(name)}

    def copied(self, path: Path, name: str, rules: IgnoreRules, into: Snapshot, above: frozenset[Path]) -> None:
        """``AdditionalIncludes._copy``: ``path`` under ``name`` unless ``rules`` leave it out, a folder entry by
        entry, each folder's own ignore file applying within it too."""
        if rules.excludes(path):
            return
        if path.is_dir():
            real = path.resolve()
            if not self.entered(path, real, above) or rules.excludes_all_under(path):
                return
            for entry in sorted(path.iterdir()):
                self.copied(entry, f"{name}/{entry.name}".lstrip("/"), rules.merged(entry), into, above | {real})
        elif path.is_file() or not path.exists():  # a link to nothing: refused, as azure-ai-ml fails on it
            into[name] = self.source(path)
        # Anything else (a device, a pipe) azure-ai-ml's merge passes over.


def is_folder(entry: os.DirEntry[str]) -> bool:
    """A folder to walk into, links followed, as ``os.walk(followlinks=True)`` tells folders from files."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def included(include: Path) -> Path:
    """What an additional include copies: the file or folder it names, or the folder ``x`` that ``x.zip`` zips."""
    if include.suffix == ".zip" and not include.exists() and include.with_suffix("").is_dir():
        return include.with_suffix("")
    return include


def code_folders(steps: Iterable[Step]) -> list[Path]:
    """The folders the steps' code comes from, their code folders and included folders, in the steps' order: where
    the step host reads what their scripts import."""
    sources = (source for step in steps if step.code for source in (step.code, *map(included, step.includes)))
    return [source for source in dict.fromkeys(sources) if source.is_dir()]


def missing_include(step: Step) -> str | None:
    """The first additional include of ``step`` that is not there, in one line; None if all are."""
    for include in step.includes:
        if not included(include).exists():
            return f"step {step.name!r}: its additional include {include} does not exist"
    return None


def snapshot_files(step: Step, leave_out: Path | None = None) -> Snapshot:
    """Every file of the step's snapshot by its name there, and where its content comes from; never anything of
    ``leave_out`` (the local runs' folder). ``PlanError`` in one line for what it must not or cannot hold."""
    lister = Lister(step, leave_out)
    if problem := missing_include(step):
        raise PlanError(problem)
    if step.includes:
        return lister.merged()
    if step.code is None:
        return {}
    return dict(lister.uploaded(step.code, IgnoreRules.of(step.code)))


def build_snapshot(step: Step, destination: Path, files: Snapshot | None = None) -> Path:
    """``destination`` filled with the step's snapshot (``files``, by default listed now); an empty folder for a step
    without code or includes."""
    files = snapshot_files(step) if files is None else files
    destination.mkdir(parents=True)
    for name, source in files.items():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Zipped):
            with zipfile.ZipFile(target, "w") as archive:
                archive.write(source.folder, source.folder.name)
                for file, name_in_archive in source.files:
                    archive.write(file, name_in_archive)
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
