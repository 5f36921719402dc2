"""A pipeline job as plain data: the steps, their command lines and where each input comes from.

``aml_graph`` makes a plan from the real azure-ai-ml pipeline job; the local runner
executes it. Neither this module nor the runner imports azure-ai-ml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

URI_TYPES = frozenset({"uri_file", "uri_folder", "mlflow_model", "custom_model", "mltable"})


class PlanError(ValueError):
    """The pipeline cannot be executed as built; the message names the step and the input."""


@dataclass(frozen=True)
class Binding:
    """Where a step input's value comes from: a pipeline input, an upstream output, a literal, or nothing."""

    pipeline_input: str | None = None
    node: str | None = None
    output: str | None = None
    value: Any = None


@dataclass(frozen=True)
class StepInput:
    type: str
    binding: Binding
    default: Any = None
    optional: bool = False

    @property
    def is_path(self) -> bool:
        return self.type in URI_TYPES


@dataclass(frozen=True)
class Step:
    name: str
    display_name: str
    command: str
    code: Path
    inputs: dict[str, StepInput]
    outputs: dict[str, str]
    deterministic: bool = True

    @property
    def upstream(self) -> set[str]:
        return {spec.binding.node for spec in self.inputs.values() if spec.binding.node}


@dataclass(frozen=True)
class Plan:
    inputs: dict[str, Any]
    steps: tuple[Step, ...]
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)

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
