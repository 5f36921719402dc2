"""A pipeline job as the YAML document azure-ai-ml would submit, which ``check`` reads for the project's own
pipeline, and a component's spec (a dict, as azure-ai-ml serialises it) as a ``Step``: the half of reading a job
that needs no azure-ai-ml objects."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .plan import REGISTRY_TAG, Binding, PlanError, Step, StepInput

PARENT_INPUT = re.compile(r"^\$\{\{parent\.inputs\.(?P<name>[\w]+)\}\}$")
NODE_OUTPUT = re.compile(r"^\$\{\{parent\.jobs\.(?P<node>[\w]+)\.outputs\.(?P<output>[\w]+)\}\}$")
PARENT_OUTPUT = re.compile(r"^\$\{\{parent\.outputs\.(?P<name>[\w]+)\}\}$")


def serialised(job: Any) -> dict[str, Any]:
    """The pipeline job as the YAML document azure-ai-ml would submit."""
    buffer = io.StringIO()
    job.dump(buffer)
    return yaml.safe_load(buffer.getvalue())


def binding(raw: Any) -> Binding:
    """A serialised binding (``{path: ...}`` or a bare value) as a ``Binding`` of the top-level pipeline."""
    if raw is None:
        return Binding()
    reference = raw.get("path") if isinstance(raw, dict) else raw
    if isinstance(reference, str):
        if match := PARENT_INPUT.match(reference):
            return Binding(pipeline_input=match["name"])
        if match := NODE_OUTPUT.match(reference):
            return Binding(node=match["node"], output=match["output"])
    return Binding(value=reference)


def command_nodes(
    document: dict[str, Any], parallel_commands: Mapping[str, tuple[str, str | None, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """The serialised job's command nodes by name, a sweep node as a command node of its trial component (the
    inputs it searches unbound, as its trials' values are sampled), and a parallel node as a command node running
    the command ``parallel_commands`` gives it (``aml_graph.parallel_command``): what ``step_from_node`` reads."""
    nodes = {}
    for name, node in (document.get("jobs") or {}).items():
        if node.get("type") == "command":
            nodes[name] = node
        elif node.get("type") == "sweep" and isinstance(node.get("trial"), dict):
            nodes[name] = {**node, "component": node["trial"]}
        elif node.get("type") == "parallel" and name in (parallel_commands or {}):
            nodes[name] = {**node, "component": with_command(node["component"], parallel_commands[name])}
    return nodes


def with_command(spec: dict[str, Any], command: tuple[str, str | None, Any]) -> dict[str, Any]:
    """A parallel component's spec as a command component's: the command line, code folder and environment that
    ``aml_graph.parallel_command`` gives it."""
    return {**spec, "command": command[0], "code": command[1], "environment": command[2]}


def component_name(node: dict[str, Any]) -> str:
    """The name a node's component declares in its spec."""
    return str(node["component"].get("name") or "")


def pipeline_input_types(job: Any) -> dict[str, str]:
    """Each pipeline input's declared type, unset optional ones included: the YAML carries only values."""
    return {name: spec.type for name, spec in job.component.inputs.items()}


def limit(value: Any) -> float | None:
    """A min or max of a component input (the serialised spec holds them as text)."""
    return None if value is None else float(value)


def component_folders(job: Any) -> dict[str, Path]:
    """The folder each command or sweep node's component was defined in: the serialised YAML keeps its
    ``additional_includes`` as written, relative to that folder."""
    folders = {}
    for name, node in job.jobs.items():
        component = node.trial if node.type == "sweep" else getattr(node, "component", None)
        if hasattr(component, "_base_path"):  # not a component registered in a workspace, named by a string
            folders[name] = Path(component._base_path)
    return folders


def include_errors(job: Any, seen: set[Any] | None = None, prefix: str = "jobs.") -> dict[str, str]:
    """azure-ai-ml's own validation of each component's ``additional_includes`` (a path that is not there...), once
    per component (its spec file; ``seen`` holds those done, across jobs), by the first node that uses it
    (``jobs.<node>.component.additional_includes``): azure-ai-ml validates them when it creates the component,
    before it uploads the code, not with the pipeline job."""
    seen = set() if seen is None else seen
    errors = {}
    for name, node in job.jobs.items():
        component = node.trial if node.type == "sweep" else getattr(node, "component", None)
        if node.type == "pipeline" and not isinstance(component, str):
            errors.update(include_errors(component, seen, f"{prefix}{name}.jobs."))
            continue
        identity = getattr(component, "_source_path", None) or id(component)
        if not hasattr(component, "_validate") or identity in seen:  # registered in a workspace, or validated
            continue
        seen.add(identity)
        try:
            messages = component._validate().error_messages
        except RuntimeError as error:  # azure-ai-ml resolves each include, and a link loop raises
            messages = {"additional_includes": str(error)}
        for key, message in messages.items():
            if key.startswith("additional_includes"):  # the rest comes with the pipeline job's validation
                errors[f"{prefix}{name}.component.{key}"] = message
    return errors


def step_from_node(name: str, node: dict[str, Any], folder: Path) -> Step:
    """A serialised command node as a step (what ``check`` reads); its component defined in ``folder``."""
    component = node["component"]
    bound = node.get("inputs") or {}
    unknown = sorted(set(bound) - set(component.get("inputs") or {}))
    if unknown:
        raise PlanError(f"step {name!r} binds {unknown[0]!r}, which its component does not declare")
    bindings = {input_name: binding(raw) for input_name, raw in bound.items()}
    return step_from_component(name, component, bindings, folder)


def resolved_include(include: Path) -> Path:
    """An additional include as azure-ai-ml resolves it, links followed; a link loop as written (absolute), which
    ``check`` reports with azure-ai-ml's validation and the runner refuses as missing."""
    try:
        return include.resolve()
    except RuntimeError:  # Python 3.11's word for a link loop
        return Path(os.path.abspath(include))


def step_from_component(name: str, component: dict[str, Any], bindings: Mapping[str, Binding], folder: Path) -> Step:
    """A step running ``component`` (its spec as a dict, code absolute, defined in ``folder``, where its relative
    additional includes start from, as azure-ai-ml resolves them) with its inputs bound by ``bindings``."""
    includes = tuple(resolved_include(folder / include) for include in component.get("additional_includes") or ())
    inputs = {
        input_name: StepInput(
            type=spec["type"],
            binding=bindings.get(input_name) or Binding(),
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
        code=Path(component["code"]) if component.get("code") else None,
        inputs=inputs,
        outputs={output: spec["type"] for output, spec in (component.get("outputs") or {}).items()},
        deterministic=bool(component.get("is_deterministic", True)),
        includes=includes,
        registry_input=(component.get("tags") or {}).get(REGISTRY_TAG),
    )
