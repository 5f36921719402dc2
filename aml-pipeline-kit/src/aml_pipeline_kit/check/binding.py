"""Rule: every step input reads an existing pipeline input or upstream output of a compatible type."""

from __future__ import annotations

import re
from pathlib import Path

from ..plan import Binding, Step
from .report import Finding, key_pattern, line_of

# A source may feed an input of another type only where Azure ML converts it without loss.
WIDENINGS = frozenset({("integer", "number")})


def binding_findings(
    steps: dict[str, Step], specs: dict[str, Path], pipeline_inputs: dict[str, str], pipeline_file: Path
) -> tuple[list[Finding], int]:
    findings = []
    count = 0
    for step in steps.values():
        for name, declared in step.inputs.items():
            source = binding_source(declared.binding, steps, pipeline_inputs)
            if source is None:  # a literal or unbound: nothing to read
                continue
            count += 1
            description, source_type, choices = source
            target = f"{step.name}.inputs.{name}"
            if source_type is None:
                line = binding_line(pipeline_file, step.name, name)
                message = f"{target} reads {description}, which does not exist"
                findings.append(Finding(pipeline_file, "binding-source", message, f"{choices} (pipeline.py)", line))
            elif not compatible(source_type, declared.type):
                message = f"{target} is {declared.type} but reads {description}, which is {source_type}"
                hint = f"make the types agree here, or bind a {declared.type} source in pipeline.py"
                line = line_of(specs[step.name], key_pattern(name))
                findings.append(Finding(specs[step.name], "binding-type", message, hint, line))
    return findings, count


def binding_source(
    binding: Binding, steps: dict[str, Step], pipeline_inputs: dict[str, str]
) -> tuple[str, str | None, str] | None:
    """What a binding reads, its type (None: no such thing), and what exists instead; None if it reads nothing."""
    if binding.pipeline_input:
        choices = f"the pipeline inputs are: {', '.join(pipeline_inputs)}"
        return f"pipeline input {binding.pipeline_input!r}", pipeline_inputs.get(binding.pipeline_input), choices
    if binding.node:
        description = f"{binding.node}.outputs.{binding.output}"
        upstream = steps.get(binding.node)
        if upstream is None:
            return description, None, f"the steps are: {', '.join(steps)}"
        choices = f"{binding.node}'s outputs are: {', '.join(upstream.outputs)}"
        return description, upstream.outputs.get(binding.output or ""), choices
    return None


def compatible(source: str, target: str) -> bool:
    return source == target or (source, target) in WIDENINGS


def binding_line(pipeline_file: Path, step: str, name: str) -> int | None:
    """The line binding ``name=`` in the call that makes ``step`` (the dsl keeps no positions; found by text)."""
    call = line_of(pipeline_file, rf"^\s*{re.escape(step)}\s*=")
    return line_of(pipeline_file, rf"\b{re.escape(name)}\s*=", after=call - 1) if call else None
