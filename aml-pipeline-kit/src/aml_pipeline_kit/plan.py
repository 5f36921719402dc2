"""A pipeline job as plain data: the steps, their command lines and where each input comes from.

``aml_graph`` makes a plan from the real azure-ai-ml pipeline job; the local runner
executes it. Neither this module nor the runner imports azure-ai-ml.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# A component's tag naming the string input whose value is a model's name in the MLflow registry: its outcome depends
# on that model's versions there, and on its inputs (see Step.registry_input).
REGISTRY_TAG = "aml-pipeline-kit.depends-on-registry"
URI_TYPES = frozenset({"uri_file", "uri_folder", "mlflow_model", "custom_model", "mltable"})
PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
INPUT_PLACEHOLDER = re.compile(r"\$\{\{inputs\.(\w+)\}\}")
OUTPUT_PLACEHOLDER = re.compile(r"\$\{\{outputs\.(\w+)\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
# A word a shell reads as itself, unquoted (what shlex.quote leaves alone).
PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
# What azure-ai-ml reads as a binding to an input or output, anywhere in a value (is_data_binding_expression).
BINDING = "${{"


class PlanError(ValueError):
    """The pipeline cannot be executed as built; the message names the step and the input."""


@dataclass(frozen=True)
class Binding:
    """Where a step input's value comes from: a pipeline input, an upstream output, a literal, or nothing."""

    pipeline_input: str | None = None
    node: str | None = None
    output: str | None = None
    value: Any = None
    mode: str | None = None  # how the step gets a data input: download (a copy of its own), ro_mount, direct...


@dataclass(frozen=True)
class StepInput:
    type: str
    binding: Binding
    default: Any = None
    optional: bool = False
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def is_path(self) -> bool:
        return self.type in URI_TYPES

    @property
    def plain_words_only(self) -> bool:
        """An enum of words a shell reads as themselves: safe in a command line without quotes."""
        return bool(self.enum) and all(PLAIN_WORD.fullmatch(value) for value in self.enum)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be given to this input, as Azure ML would refuse it (type, enum, min, max), or as
        a shell would misread it; None if it can. Strings and paths stand single-quoted in commands: a quote would
        end them."""
        if value is None:
            return None
        if self.is_path:
            return file_name_problem(str(value))
        if self.type in {"integer", "number"}:
            number = as_number(value, whole=self.type == "integer")
            if number is None:
                return f"{value!r} is not a {'whole number' if self.type == 'integer' else 'finite number'}"
            if self.minimum is not None and number < self.minimum:
                return f"{value!r} is below the minimum {shown(self.minimum)}"
            if self.maximum is not None and number > self.maximum:
                return f"{value!r} is above the maximum {shown(self.maximum)}"
            return None
        if self.type == "boolean":
            return None if str(value).lower() in {"true", "false"} else f"{value!r} is not true or false"
        if self.enum and str(value) not in self.enum:
            return f"{value!r} is not one of {', '.join(self.enum)}"
        if "'" in str(value) or "\0" in str(value):
            return f"{value!r} holds a single quote or a NUL, which no quoting on a command line carries safely"
        if BINDING in str(value):
            return f"{value!r} holds ${{{{...}}}}, which Azure ML reads as a binding to an input or output, not as text"
        return None


def file_name(path: str) -> str:
    """The last part of a local path or a data reference (``azureml://.../paths/x.csv``): what a data input's path ends
    with on Azure ML, which mounts or downloads the data under a folder of its own and fills that path in."""
    return PurePosixPath(path.replace("\\", "/")).name


def file_name_problem(path: str) -> str | None:
    """Why the file at ``path`` cannot be a data input's, whose path Azure ML fills into a command (single-quoted),
    and whose name azure-ai-ml keeps when it uploads it to blob storage; None if it can."""
    name = file_name(path)
    if "'" in name:
        return f"its file name {name!r} holds a single quote, which no quoting on a command line carries safely"
    if BINDING in name:
        return f"its file name {name!r} holds ${{{{...}}}}, which Azure ML reads as a binding to an input or output"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return f"its file name {name!r} holds a control character, which Azure Storage refuses in a blob name"
    return None


def shown(limit: float) -> int | float:
    """A min or max as its spec writes it: 1, not 1.0."""
    return int(limit) if limit.is_integer() else limit


def as_number(value: Any, whole: bool) -> float | None:
    """``value`` as a finite number (a whole one if ``whole``), from a number or its text; None if it is not one."""
    if isinstance(value, bool):
        return None
    try:
        if not whole:
            number = float(value)
        elif isinstance(value, int | str):
            number = float(int(value))
        else:  # 200.0 for an integer input: Azure ML refuses it too
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def single_quoted(command: str) -> list[range]:
    """Where ``command`` stands in single quotes, read the way a POSIX shell reads it (quotes inside double quotes
    are plain characters, a backslash escapes the next character outside single quotes)."""
    spans: list[range] = []
    index, double = 0, False
    while index < len(command):
        char = command[index]
        if char == "\\" and index + 1 < len(command):
            index += 2
            continue
        if char == '"':
            double = not double
        elif char == "'" and not double:
            end = command.find("'", index + 1)
            if end < 0:
                break
            spans.append(range(index + 1, end))
            index = end
        index += 1
    return spans


def unquoted_inputs(command: str, inputs: dict[str, StepInput]) -> list[str]:
    """The string and data inputs a command fills in where a shell would read their value's characters: outside
    single quotes, and not limited to an enum of plain words. Azure ML runs commands in a shell, and a data input's
    path there ends with its file's name, which may hold anything. Outputs are folders Azure ML names itself."""
    quoted = single_quoted(command)
    found = []
    for match in INPUT_PLACEHOLDER.finditer(command):
        declared = inputs.get(match[1])
        if declared is None or not (declared.type == "string" or declared.is_path) or declared.plain_words_only:
            continue
        if not any(match.start() in span and match.end() - 1 in span for span in quoted):
            found.append(match[1])
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Step:
    name: str
    display_name: str
    command: str
    code: Path | None  # None: no code, the step runs in an empty folder
    inputs: dict[str, StepInput]
    outputs: dict[str, str]
    deterministic: bool = True
    may_fail: bool = False  # a sweep trial: its failure is recorded and the run goes on, the sweep picks from the rest
    includes: tuple[Path, ...] = ()  # the component's additional_includes, absolute: copied beside its code
    # The input naming a model of the MLflow registry the step decides from (its component's REGISTRY_TAG): a step
    # that is not deterministic is reused locally while that model's versions in the registry are as they were.
    registry_input: str | None = None

    @property
    def upstream(self) -> set[str]:
        return {spec.binding.node for spec in self.inputs.values() if spec.binding.node}


@dataclass(frozen=True)
class Plan:
    inputs: dict[str, Any]
    steps: tuple[Step, ...]
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what runs otherwise than on Azure ML (a skipped `pip install`...), said once per run
    experiment: str | None = None  # the job's experiment_name, if it names one

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)


def in_dependency_order(steps: list[Step]) -> tuple[Step, ...]:
    """Steps sorted so that each comes after the steps whose outputs it reads."""
    by_name = {step.name: step for step in steps}
    for step in steps:
        missing = step.upstream - by_name.keys()
        if missing:
            raise PlanError(f"step {step.name!r} reads outputs of unknown step {sorted(missing)[0]!r}")
    ordered: list[Step] = []
    placed: set[str] = set()
    while len(ordered) < len(steps):
        ready = [step for step in steps if step.name not in placed and step.upstream <= placed]
        if not ready:
            cycle = sorted(step.name for step in steps if step.name not in placed)
            raise PlanError(f"steps {cycle} depend on each other in a cycle")
        ordered.extend(ready)
        placed.update(step.name for step in ready)
    return tuple(ordered)


def step_to_data(step: Step) -> dict[str, Any]:
    """``step`` as JSON-ready data; ``step_from_data`` gives it back equal."""
    return {
        **asdict(step),
        "code": None if step.code is None else str(step.code),
        "includes": [str(path) for path in step.includes],
        "inputs": {name: {**asdict(spec), "enum": list(spec.enum)} for name, spec in step.inputs.items()},
    }


def step_from_data(data: dict[str, Any]) -> Step:
    inputs = {
        name: StepInput(**{**spec, "binding": Binding(**spec["binding"]), "enum": tuple(spec["enum"])})
        for name, spec in data["inputs"].items()
    }
    code = None if data["code"] is None else Path(data["code"])
    return Step(**{**data, "code": code, "includes": tuple(map(Path, data["includes"])), "inputs": inputs})


def plan_to_data(plan: Plan) -> dict[str, Any]:
    """``plan`` as JSON-ready data; ``plan_from_data`` gives it back equal."""
    return {
        "inputs": plan.inputs,
        "steps": [step_to_data(step) for step in plan.steps],
        "outputs": {name: list(source) for name, source in plan.outputs.items()},
        "notes": list(plan.notes),
        "experiment": plan.experiment,
    }


def plan_from_data(data: dict[str, Any]) -> Plan:
    return Plan(
        inputs=data["inputs"],
        steps=tuple(step_from_data(step) for step in data["steps"]),
        outputs={name: (node, output) for name, (node, output) in data["outputs"].items()},
        notes=tuple(data["notes"]),
        experiment=data.get("experiment"),
    )
