# Maintained by the template this project was rendered from, at the version in aml_pipeline_kit/__init__.py:
# update with `cruft update`, don't edit here (the template's own tests cover this file).
"""The one module that reads azure-ai-ml's object model: a built pipeline job -> a ``Plan``.

It reads the job's serialised YAML (the document ``submit`` sends to Azure ML)
for the nodes, their components and bindings, the pipeline inputs' values
through ``PipelineInput.result()`` and their declared types through the job's
pipeline component (for ``check``). The azure-ai-ml range it is tested with is
pinned in pyproject.toml; its tests fail if an SDK upgrade changes either.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import yaml

from .plan import Binding, Plan, PlanError, Step, StepInput, in_dependency_order

PARENT_INPUT = re.compile(r"^\$\{\{parent\.inputs\.(?P<name>[\w]+)\}\}$")
NODE_OUTPUT = re.compile(r"^\$\{\{parent\.jobs\.(?P<node>[\w]+)\.outputs\.(?P<output>[\w]+)\}\}$")
PARENT_OUTPUT = re.compile(r"^\$\{\{parent\.outputs\.(?P<name>[\w]+)\}\}$")


def serialised(job: Any) -> dict[str, Any]:
    """The pipeline job as the YAML document azure-ai-ml would submit."""
    buffer = io.StringIO()
    job.dump(buffer)
    return yaml.safe_load(buffer.getvalue())


def input_value(value: Any) -> Any:
    """A pipeline input's value: a path for data inputs, the literal for parameters."""
    return getattr(value, "path", value)


def binding(raw: Any) -> Binding:
    if raw is None:
        return Binding()
    reference = raw.get("path") if isinstance(raw, dict) else raw
    if isinstance(reference, str):
        if match := PARENT_INPUT.match(reference):
            return Binding(pipeline_input=match["name"])
        if match := NODE_OUTPUT.match(reference):
            return Binding(node=match["node"], output=match["output"])
    return Binding(value=reference)


def command_nodes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The serialised job's command nodes by name: what ``step_from_node`` reads."""
    return {name: node for name, node in (document.get("jobs") or {}).items() if node.get("type") == "command"}


def component_name(node: dict[str, Any]) -> str:
    """The name a node's component declares in its spec."""
    return str(node["component"].get("name") or "")


def pipeline_input_types(job: Any) -> dict[str, str]:
    """Each pipeline input's declared type, unset optional ones included: the YAML carries only values."""
    return {name: spec.type for name, spec in job.component.inputs.items()}


def limit(value: Any) -> float | None:
    """A min or max of a component input (the serialised spec holds them as text)."""
    return None if value is None else float(value)


def step_from_node(name: str, node: dict[str, Any]) -> Step:
    component = node["component"]
    bound = node.get("inputs") or {}
    unknown = sorted(set(bound) - set(component.get("inputs") or {}))
    if unknown:
        raise PlanError(f"step {name!r} binds {unknown[0]!r}, which its component does not declare")
    inputs = {
        input_name: StepInput(
            type=spec["type"],
            binding=binding(bound.get(input_name)),
            default=spec.get("default"),
            optional=bool(spec.get("optional", False)),
            enum=tuple(str(value) for value in spec.get("enum") or ()),
            minimum=limit(spec.get("min")),
            maximum=limit(spec.get("max")),
        )
        for input_name, spec in (component.get("inputs") or {}).items()
    }
    return Step(
        name=name,
        display_name=component.get("display_name") or name,
        command=component["command"],
        code=Path(component["code"]),
        inputs=inputs,
        outputs={output: spec["type"] for output, spec in (component.get("outputs") or {}).items()},
        deterministic=bool(component.get("is_deterministic", True)),
    )


def pipeline_outputs(jobs: dict[str, Any]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for node_name, node in jobs.items():
        for output, target in (node.get("outputs") or {}).items():
            reference = target.get("path") if isinstance(target, dict) else target
            if isinstance(reference, str) and (match := PARENT_OUTPUT.match(reference)):
                found[match["name"]] = (node_name, output)
    return found


def plan_from_job(job: Any) -> Plan:
    """The executable plan of a built ``PipelineJob``: its steps in dependency order."""
    document = serialised(job)
    jobs = document.get("jobs") or {}
    for node_name, node in jobs.items():
        if node.get("type") != "command":
            raise PlanError(f"step {node_name!r} is a {node.get('type')!r} job; the local runner runs command steps")
    steps = [step_from_node(node_name, node) for node_name, node in jobs.items()]
    return Plan(
        inputs={name: input_value(pipeline_input.result()) for name, pipeline_input in job.inputs.items()},
        steps=in_dependency_order(steps),
        outputs=pipeline_outputs(jobs),
    )
