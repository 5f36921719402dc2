"""Reusing a step's earlier outputs: what makes a step's outputs what they are (its key), and the index of
earlier successful steps, each output with a manifest of its files to tell that it is still intact."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .plan import Step
from .plan_cache import IGNORED_PARTS
from .records import read_record, write_record
from .snapshot import Snapshot, Zipped


def iter_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not IGNORED_PARTS.intersection(path.parts) and path.suffix != ".pyc":
            yield path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(path: Path) -> str:
    """sha256 of a file, or of every file (with its relative name) in a folder."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else list(iter_files(path))
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def snapshot_digest(files: Snapshot) -> str:
    """sha256 of a step's code snapshot: each file's name in it and content (a zipped folder's, file by file)."""
    digest = hashlib.sha256()
    for name, source in sorted(files.items()):
        parts = source.files if isinstance(source, Zipped) else [(source, "")]
        for file, name_in_archive in parts:
            digest.update(json.dumps([name, name_in_archive, file_sha256(file)]).encode())
    return digest.hexdigest()


def step_key(step: Step, values: dict[str, Any], upstream_keys: dict[str, str], code: Snapshot) -> str:
    """What makes a step's outputs what they are: its code snapshot (``code``: its code folder and additional
    includes as Azure ML uploads them), command, parameters and input contents."""
    inputs: dict[str, Any] = {}
    for name, spec in step.inputs.items():
        if spec.binding.node:
            inputs[name] = {"step": upstream_keys[spec.binding.node], "output": spec.binding.output}
        elif spec.is_path and values[name] is not None and Path(values[name]).exists():  # not a URL
            inputs[name] = {"content": content_digest(Path(values[name]))}
        else:
            inputs[name] = values[name]
    identity = {"command": step.command, "code": snapshot_digest(code), "inputs": inputs}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def link_tree(source: Path, destination: Path) -> None:
    """A copy of ``source`` that shares the files' storage where the file system allows."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link_or_copy)


def manifest(folder: Path) -> dict[str, list[Any]]:
    """Every file in ``folder``: its relative name, size and sha256."""
    return {
        path.relative_to(folder).as_posix(): [path.stat().st_size, file_sha256(path)]
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def manifest_difference(folder: Path, expected: dict[str, list[Any]]) -> str | None:
    """How ``folder`` differs from its manifest, in a few words; None if every file is as it was."""
    if not folder.is_dir():
        return f"{folder} is gone"
    return difference(folder, expected, manifest(folder))


def difference(folder: Path, expected: dict[str, list[Any]], found: dict[str, list[Any]]) -> str | None:
    """The first file whose entry differs between ``expected`` and ``found`` (names relative to ``folder``)."""
    for name in sorted(expected.keys() | found.keys()):
        if name not in found:
            return f"{folder / name} is gone"
        if name not in expected:
            return f"{folder / name} was added"
        if found[name] != expected[name]:
            return f"{folder / name} changed"
    return None


class ReuseIndex:
    """Earlier successful steps by key: ``runs/.reuse/<key>.json``, with a manifest of each output (names, sizes,
    sha256) taken when the step succeeded. An entry whose outputs no longer match it is never reused."""

    def __init__(self, runs_dir: Path) -> None:
        self.folder = runs_dir / ".reuse"

    def lookup(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """The entry for ``key`` if its outputs are intact; otherwise None, and why (None if there is no entry, or
        a corrupt one, which is said and ignored)."""
        entry = read_record(self.folder / f"{key}.json", "reuse entry", reuse_entry)
        if entry is None:
            return None, None
        manifests = entry.get("manifests") or {}
        for name, output in entry["outputs"].items():
            if name not in manifests:
                return None, f"{output} has no manifest"
            if difference := manifest_difference(Path(output), manifests[name]):
                return None, difference
        return entry, None

    def record(self, key: str, run_id: str, outputs: dict[str, Path], mlflow_run_id: str | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {
            "run_id": run_id,
            "outputs": {name: str(path) for name, path in outputs.items()},
            "manifests": {name: manifest(path) for name, path in outputs.items()},
            "mlflow_run_id": mlflow_run_id,
        }
        write_record(self.folder / f"{key}.json", entry)


def reuse_entry(data: Any) -> dict[str, Any]:
    """A reuse entry as ``ReuseIndex.record`` writes it; one of ``records.CORRUPT`` if ``data`` is none."""
    names = [data["run_id"], *data["outputs"].values()]
    if not all(isinstance(name, str) for name in names) or not isinstance(data.get("mlflow_run_id") or "", str):
        raise ValueError("its run and outputs are not named")
    if not all(isinstance(files, dict) for files in (data.get("manifests") or {}).values()):
        raise ValueError("its manifests are not lists of files")
    return data
