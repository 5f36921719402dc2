"""Pipeline jobs written as YAML files (``az ml job create --file pipeline.yml``), checked and run locally.

azure-ai-ml loads the file (``load_job``, offline) and validates it; the local runner reads the loaded job,
not its YAML dump (see ``aml_graph``). A node the local runner cannot run is refused in one line before
anything runs; then azure-ai-ml's validation and ``check``'s command and script rules (every placeholder
declared, optional inputs inside ``$[[...]]``, flags the script takes) must find nothing, as for the project's
own pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .aml_graph import data_reference, read_job
from .check import collector_paused
from .check.command import command_findings
from .check.report import Finding, Report, one_line
from .check.script import script_call, script_findings
from .config_files import SettingsError, check_yaml_files
from .data_refs import local_data
from .job_yaml import include_errors
from .local_runner import LocalRunner, RunResult, hosting
from .plan import Plan, PlanError, Step
from .snapshot import code_folders
from .step_host import StepHost, TrackingTarget


def load_pipeline_job(path: Path) -> Any:
    """The pipeline job in ``path``, loaded by azure-ai-ml; ``PlanError`` in one line if it cannot be loaded or is
    no pipeline job."""
    if not path.is_file():
        raise PlanError(f"--job {path}: no such file")
    try:
        check_yaml_files([path])  # and the specs it names: a YAML bomb is refused before azure-ai-ml expands it
    except SettingsError as error:
        raise PlanError(str(error)) from None
    # azure-ai-ml warns on every load that its own schema classes are experimental: nothing a user can act on.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    from azure.ai.ml import load_job  # seconds to import: only when a job file is run or checked

    try:
        job = load_job(path)
    except Exception as error:  # azure-ai-ml's schema and YAML errors alike
        raise PlanError(f"{path}: {one_line(error)}") from None
    if job.type != "pipeline":
        raise PlanError(f"{path} holds a {job.type} job; the local runner runs pipeline jobs (type: pipeline)")
    return job


def with_parameters(
    plan: Plan, job: Any, parameters: Mapping[str, Any], substitutes: Mapping[str, Path], path: Path
) -> Plan:
    """``plan`` with its pipeline inputs set from ``parameters`` (``-p NAME=VALUE``): a data input's value is a
    local path, from the current folder, or a reference ``substitutes`` maps."""
    unknown = sorted(set(parameters) - set(job.inputs))
    if unknown:
        raise PlanError(f"{path} has no input {unknown[0]!r}; its inputs are: {', '.join(job.inputs) or 'none'}")
    values = {}
    for name, value in parameters.items():
        declared, data_type, _ = data_reference(job.inputs[name].result())
        where = f"-p {name}"
        values[name] = (
            value if declared is None else local_data(str(value), data_type, None, Path.cwd(), substitutes, where)
        )
    return replace(plan, inputs={**plan.inputs, **values})


def components_of(plan: Plan, sources: dict[str, Path | None], path: Path) -> dict[tuple[str, Path], Step]:
    """One step of each component (its command and spec file; ``path`` for those defined inline), the sweeps' own
    steps that pick the best trial left out: the runner wrote their commands."""
    components: dict[tuple[str, Path], Step] = {}
    for step in plan.steps:
        if step.name in sources:
            components.setdefault((step.command, sources[step.name] or path), step)
    return components


def job_findings(path: Path, job: Any, components: dict[tuple[str, Path], Step]) -> list[Finding]:
    """azure-ai-ml's validation of the job, and check's command and script rules for each component."""
    hint = "azure-ai-ml's own validation of the pipeline job: correct it as it says"
    errors = {**job._validate().error_messages, **include_errors(job)}
    findings = [Finding(path, "aml-validate", f"{where}: {message}", hint) for where, message in errors.items()]
    for (_, spec), step in components.items():
        # A job file's values are known: the runner refuses one a shell would misread (plan_problem) instead of
        # every string placeholder outside quotes, which Azure ML's own examples are full of.
        findings += [finding for finding in command_findings(step, spec) if finding.rule != "command-quoting"]
        findings += script_findings(step, spec) if step.code else []
    return list(dict.fromkeys(findings))


def checked_job(
    path: Path,
    substitutes: Mapping[str, Path],
    own_environment: str | None,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[Plan, Report]:
    """The plan of the pipeline job in ``path`` and check's report on it. ``PlanError``: it cannot run locally.
    ``own_environment``: the project's environment, by name; None outside any project (the steps run in the engine's
    Python environment)."""
    with collector_paused():
        job = load_pipeline_job(path)
        plan, sources = read_job(job, substitutes, own_environment, noted=True)
        plan = with_parameters(plan, job, parameters or {}, substitutes, path)
        components = components_of(plan, sources, path)
        findings = job_findings(path, job, components)
    return plan, Report(
        path.parent,
        findings,
        components=len(components),
        bindings=sum(1 for step in plan.steps for spec in step.inputs.values() if spec.binding.node),
        scripts=sum(bool(step.code) and script_call(step.command) is not None for step in components.values()),
    )


def check_job_file(path: Path, substitutes: Mapping[str, Path], own_environment: str | None) -> Report:
    """``check --job``: every finding, a refusal of the local runner included."""
    try:
        return checked_job(path, substitutes, own_environment)[1]
    except PlanError as error:
        refusal = Finding(path, "local-run", str(error), "run it on Azure ML, or change what the line names")
        return Report(path.parent, [refusal], built=False)


def run_job_file(plan: Plan, runs_dir: Path, tracking: TrackingTarget, **runner: Any) -> RunResult:
    """Run a checked job file's plan on this machine, with a step host of its own if a step is to run; ``runner``:
    ``LocalRunner``'s options (reuse, parallel, progress)."""
    with hosting(LocalRunner(runs_dir, None, tracking, **runner)) as local:
        if to_run := local.steps_to_run(plan):
            local.host = StepHost(tracking, code_folders(to_run))
        return local.run(plan)
