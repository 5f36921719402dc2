"""Reading the project's YAML files (config.yml, the specs in aml/ and components/, pipeline job files), with one
error for all that can go wrong.

YAML lets a few hundred bytes stand for a billion values (anchors and aliases, "billion laughs"): PyYAML builds
them as shared objects, but whatever walks them (azure-ai-ml loading a spec, a plan written as JSON) expands them,
to gigabytes. Every YAML file is read here first, within limits: ``MAX_YAML_BYTES`` of text, ``MAX_YAML_VALUES``
values once aliases are expanded, ``MAX_YAML_DEPTH`` levels of nesting, no alias inside itself. A file past them is
refused in one line before anything else (azure-ai-ml's loaders included) reads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

MAX_YAML_BYTES = 4 << 20  # 4 MiB: a config.yml listing the columns of a very wide CSV fits many times over
MAX_YAML_VALUES = 1_000_000  # azure-ai-ml loads a million in about a second; ten million take gigabytes
MAX_YAML_DEPTH = 100
YAML_SUFFIXES = (".yml", ".yaml")
SPEC_KEYS = frozenset({"component", "trial", "environment", "conda_file"})  # where a job names a spec azure-ai-ml loads
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML has it: the same YAML, faster


class SettingsError(ValueError):
    """config.yml or an aml/ spec is missing or malformed; the message says which and how."""


def read_yaml(path: Path) -> dict[str, Any]:
    document = load_yaml(path)
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: expected a mapping at the top level")
    return document


def load_yaml(path: Path) -> Any:
    """The YAML document in ``path``, read within the limits above."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such file") from None
    if len(text) > MAX_YAML_BYTES:
        raise SettingsError(f"{path}: more than {MAX_YAML_BYTES >> 20} MiB of YAML, more than a file here may hold")
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            check_limits(node, path)
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    finally:
        loader.dispose()


def children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_limits(root: yaml.Node, path: Path) -> None:
    """``SettingsError`` if the document at ``root`` nests too deep, holds an alias inside itself, or expands (each
    alias counted as often as it is used) to more values than ``MAX_YAML_VALUES``."""
    values: dict[int, int] = {}  # a node -> how many values it stands for, aliases expanded
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        if finished:
            on_path.discard(id(node))
            values[id(node)] = 1 + sum(values[id(child)] for child in children(node))
            if values[id(node)] > MAX_YAML_VALUES:
                raise SettingsError(
                    f"{path}: its aliases expand to more than {MAX_YAML_VALUES:,} values (a YAML alias bomb): "
                    "refused before anything reads it"
                )
            continue
        if id(node) in values:
            continue
        if id(node) in on_path:
            raise SettingsError(f"{path}: an alias within its own anchor (a YAML structure holding itself)")
        if depth > MAX_YAML_DEPTH:
            raise SettingsError(f"{path}: nested more than {MAX_YAML_DEPTH} levels deep")
        on_path.add(id(node))
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children(node))


def check_yaml_files(paths: Iterable[Path]) -> None:
    """Read each YAML file of ``paths`` within the limits above, and every YAML file it names in turn (a job's
    components, a component's environment), as azure-ai-ml will: ``SettingsError`` on the first past them."""
    seen: set[Path] = set()
    waiting = [Path(path).resolve() for path in paths]
    while waiting:
        path = waiting.pop()
        if path in seen:
            continue
        seen.add(path)
        waiting += named_yaml_files(load_yaml(path), path.parent)


def named_yaml_files(document: Any, folder: Path) -> list[Path]:
    """The YAML files that the keys azure-ai-ml follows (``SPEC_KEYS``) name in ``document``, relative to
    ``folder``: those that exist."""
    found = []
    waiting = [document]
    while waiting:
        value = waiting.pop()
        if isinstance(value, list):
            waiting += value
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in SPEC_KEYS and isinstance(item, str) and item.endswith(YAML_SUFFIXES):
                    candidate = folder / item.removeprefix("file:")
                    if os.path.isfile(candidate):
                        found.append(candidate.resolve())
                else:
                    waiting.append(item)
    return found
