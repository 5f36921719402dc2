"""What one step is given: its inputs' local values, its outputs' paths, a fresh copy of its code to run in, and its
command line filled in; and, when it ends, whether it wrote into an input it had read-only."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from .plan import INPUT_PLACEHOLDER, OPTIONAL_BLOCK, PLACEHOLDER, PlanError, Step
from .reuse import difference
from .shell import SHELL, needs_shell, shell_line
from .snapshot import Snapshot, build_snapshot

CODE_COPY = ".code"  # in a step's run folder: the copy of its code it runs in
INPUT_COPIES = ".inputs"  # in a step's run folder: its inputs of mode download, copied
ReadOnly = dict[str, tuple[Path, dict[str, list[int]]]]  # input -> its path, and its files as the step started


def resolve_inputs(
    step: Step, pipeline_inputs: dict[str, Any], produced: dict[tuple[str, str], Path]
) -> dict[str, Any]:
    """Each input's local value: a pipeline input, an upstream output folder, a literal, or the default."""
    values: dict[str, Any] = {}
    for name, spec in step.inputs.items():
        binding = spec.binding
        if binding.node:
            value: Any = produced.get((binding.node, binding.output or ""))
            if value is None and not spec.optional:  # optional: a sweep trial's output, the trial may have failed
                source = f"{binding.node}.{binding.output}"
                raise PlanError(f"step {step.name!r} input {name!r} reads {source}, which no step produced")
        elif binding.pipeline_input:
            value = pipeline_inputs.get(binding.pipeline_input)
        else:
            value = binding.value
        if value is None:
            value = spec.default
        if value is None and not spec.optional:
            raise PlanError(f"step {step.name!r} input {name!r} has no value and no default")
        values[name] = value
    return values


def render_command(command: str, inputs: dict[str, Any], outputs: dict[str, Path]) -> list[str]:
    """The command's argv with ``${{inputs.x}}``, ``${{outputs.y}}`` and ``$[[optional]]`` blocks resolved.

    The command is split into words first, as a shell splits it, then each placeholder is filled in once: a value
    is never searched for placeholders itself, whatever it holds (a column named ``${{outputs.model}}``).
    """

    def keep_optional(block: re.Match[str]) -> str:
        names = INPUT_PLACEHOLDER.findall(block[1])
        return block[1] if all(inputs.get(name) is not None for name in names) else ""

    def value(match: re.Match[str]) -> str:
        kind, name = match[1], match[2]
        declared = inputs if kind == "inputs" else outputs
        if name not in declared:
            raise PlanError(f"command uses {match[0]}, which the component does not declare")
        if declared[name] is None:
            raise PlanError(f"command uses optional input {name!r} outside a $[[...]] block, but it is unset")
        return str(declared[name])

    command = OPTIONAL_BLOCK.sub(keep_optional, command)
    if needs_shell(command):  # Azure ML runs every command in a shell; a plain `python x.py` needs none
        return [SHELL, "-c", shell_line(command, value)]
    argv = [PLACEHOLDER.sub(value, token) for token in shlex.split(command)]
    if argv and argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


def fresh_code_copy(step: Step, step_dir: Path, files: Snapshot) -> Path:
    """The folder a step runs in: a fresh copy of its code snapshot (``files``), as Azure ML snapshots code per job
    (what a step writes beside its script stays in its run); an empty folder for a step without code."""
    return build_snapshot(step, step_dir / CODE_COPY, files)


def downloaded(step: Step, values: dict[str, Any], step_dir: Path) -> dict[str, Any]:
    """``values`` with each ``mode: download`` data input copied into the step's run folder, as Azure ML gives it:
    a copy of the step's own, which it may change without touching the source."""
    delivered = dict(values)
    for name, spec in step.inputs.items():
        source = Path(values[name]) if spec.is_path and values[name] is not None else None
        if spec.binding.mode == "download" and source and source.exists():
            copy = step_dir / INPUT_COPIES / name
            if source.is_dir():
                shutil.copytree(source, copy)
            else:
                copy.mkdir(parents=True)
                copy = Path(shutil.copy2(source, copy))
            delivered[name] = str(copy)
    return delivered


def output_path(folder: Path, kind: str) -> Path:
    """Where a step writes an output kept in ``folder``: the folder itself, or for a ``uri_file`` a file in it named
    as the output, as Azure ML gives it (``.../wd/<output>/<output>``, the folder there, the file not yet)."""
    return folder / folder.name if kind == "uri_file" else folder


def file_states(path: Path) -> dict[str, list[int]]:
    """Every file at ``path`` (a file or a folder): its relative name, size and modification time. Cheap: what
    tells whether a step wrote into an input, where hashing every file would cost as much as reading it."""
    files = [path] if path.is_file() else sorted(item for item in path.rglob("*") if item.is_file())
    return {
        (file.relative_to(path).as_posix() if file != path else ""): [file.stat().st_size, file.stat().st_mtime_ns]
        for file in files
    }


def read_only_inputs(step: Step, values: dict[str, Any], runs_dir: Path) -> ReadOnly:
    """The files of each input the step gets read-only, taken as it starts: every data input but those of mode
    download (a copy of its own); Azure ML's default is ro_mount, and an input has no writable mode. An input
    holding ``runs_dir`` (the project's folder, say) is left out: the run itself writes into it."""
    paths = {
        name: Path(values[name])
        for name, spec in step.inputs.items()
        if spec.is_path and spec.binding.mode != "download" and values[name] is not None
    }
    return {
        name: (path, file_states(path))
        for name, path in paths.items()
        if path.exists() and not runs_dir.resolve().is_relative_to(path.resolve())
    }


def written_input(read_only: ReadOnly) -> str | None:
    """What a step that ended wrote into an input it had read-only, in one line; None if it wrote into none. A
    read-only mount needs privileges a local run lacks: the files are compared instead (names, sizes, times)."""
    for name, (path, before) in read_only.items():
        after = file_states(path) if path.exists() else {}
        if change := difference(path, before, after):
            return (
                f"its input {name!r} is mounted read-only on Azure ML (mode ro_mount), but the step wrote into it: "
                f"{change}; write to an output, or give the input mode download (a copy of the step's own)"
            )
    return None
