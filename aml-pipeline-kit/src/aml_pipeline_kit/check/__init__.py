"""``check``: the project's contracts, verified offline in seconds. Run it after every edit.

azure-ai-ml loads the specs in aml/, builds the pipeline (which loads the components)
and validates it. Then come the contracts azure-ai-ml does not check, which would
otherwise fail minutes into a run on a cluster:

- command: every ``${{inputs.x}}`` / ``${{outputs.y}}`` in a component's command is declared, every
  required input and every output is used, and optional inputs appear only inside ``$[[...]]``;
- quoting: Azure ML fills the command in and runs it in a shell, so a string input stands inside single
  quotes (``'${{inputs.x}}'``, not within double quotes), unless its ``enum`` holds only words a shell
  reads as themselves, and so does a data input, whose path there ends with its file's name; its values
  may then hold anything but a single quote (the local runner refuses one, and a file named with one),
  and data-born text such as column names travels base64-encoded;
- values: config.yml's parameters fit the inputs they feed (type, enum, min, max), as Azure ML will check,
  and hold no ``${{...}}``, which azure-ai-ml would read as a binding to another job's input or output;
- script: the flags a command passes and its step script's argparse options agree;
- binding: every step input reads an existing pipeline input or upstream output of a compatible type;
- environment: the AML environment's conda file pins (==) every third-party package the step scripts import.

Step scripts are read with ``ast``, not imported: importing one costs seconds (pandas,
scikit-learn, MLflow). Only a script whose options are computed is imported, for its
``build_parser()``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..aml_graph import check_nodes, component_name, pipeline_input_types, plan_from_job, step_from_node
from ..config_files import SettingsError
from ..job_yaml import component_folders, include_errors
from ..plan import PlanError, Step, plan_to_data, step_from_data, step_to_data
from ..plan_cache import SCRIPTS_VERDICT, VERDICT, PlanCache, training_plan
from .aml_validation import build_finding, spec_findings, validation_findings
from .binding import binding_findings
from .command import command_findings
from .environment import environment_findings
from .report import CheckFailed, Finding, Report, spec_file
from .script import script_call, script_findings
from .values import value_findings

__all__ = ["CheckFailed", "Definitions", "Finding", "Report", "check_project"]


def check_project(
    root: Path,
    build_pipeline: Callable[[], Any],
    pipeline_file: Path,
    cache: PlanCache | None = None,
    more_findings: Callable[[], list[Finding]] = list,
) -> Report:
    """Every check on the project at ``root``, whose pipelines ``build_pipeline()`` builds (from the ``@dsl.pipeline``
    graphs in ``pipeline_file``): one pipeline job, or several by name, the training one named ``training``.
    ``more_findings()`` checks the project's other azure-ai-ml specs. Raises ``SettingsError`` if config.yml itself
    is wrong.

    With a ``cache``, the half that needs azure-ai-ml (specs, build, validation, commands, bindings, values) is
    skipped while everything it read is as it was when the whole check last found nothing; the rules on scripts
    and the environment, which read the component folders with ``ast``, run every time."""
    pipeline_file = pipeline_file.resolve()
    stored = cache.lookup(VERDICT, Definitions.from_data) if cache else None
    if stored is not None:
        report = scripts_checked(root, stored, cache=cache)
    else:
        with collector_paused():
            report = checked(root, build_pipeline, pipeline_file, cache, more_findings)
    report.source_root = pipeline_file.parents[2]  # <project>/src/<package>/pipeline.py
    return report


@contextmanager
def collector_paused() -> Iterator[None]:
    """Importing azure-ai-ml and building with it create hundreds of thousands of lasting objects, which the
    cyclic garbage collector would scan over and over, for tenths of a second. The little garbage waits until after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class Definitions:
    """What the azure-ai-ml half of ``check`` leaves to the other: one step per component, the bindings counted."""

    components: dict[str, Step]
    bindings: int

    def to_data(self) -> dict[str, Any]:
        components = {name: step_to_data(step) for name, step in self.components.items()}
        return {"components": components, "bindings": self.bindings}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Definitions:
        return cls({name: step_from_data(step) for name, step in data["components"].items()}, data["bindings"])


def checked(
    root: Path,
    build_pipeline: Callable[[], Any],
    pipeline_file: Path,
    cache: PlanCache | None,
    more_findings: Callable[[], list[Finding]],
) -> Report:
    with cache.tracing() if cache else nullcontext({}) as reads:  # what azure-ai-ml's half reads, and only that
        findings = [*spec_findings(root / "aml"), *more_findings()]
        try:
            built = build_pipeline()
        except SettingsError:
            raise
        except Exception as error:  # whatever a component spec or pipeline.py makes azure-ai-ml raise
            return Report(root, [*findings, build_finding(error, root, pipeline_file)], built=False)
        jobs = built if isinstance(built, dict) else {"training": built}
        seen: set[Any] = set()  # a component used in several graphs is validated once
        try:
            graphs = [(job, check_nodes(job), job_validation(job, seen)) for job in jobs.values()]
        except PlanError as error:  # a parallel node with settings Azure ML refuses: its step cannot be read
            hint = "set what Azure ML's parallel job takes"
            return Report(root, [*findings, Finding(pipeline_file, "parallel-node", str(error), hint)], built=False)
    components: dict[str, tuple[Step, Path]] = {}  # a component used by several steps or graphs is checked once
    binding_problems: list[Finding] = []
    bindings = 0
    for job, nodes, validation_errors in graphs:
        steps: dict[str, Step] = {}
        specs: dict[str, Path] = {}
        folders = component_folders(job)
        for name, node in nodes.items():
            try:
                step = step_from_node(name, node, folders[name])
            except PlanError as error:  # its other findings would follow from this one
                hint = "bind only inputs the component declares"
                unreadable = Finding(pipeline_file, "binding-target", str(error), hint)
                return Report(root, [*findings, unreadable], built=False)
            steps[name], specs[name] = step, spec_file(step.code, component_name(node))
            components.setdefault(component_name(node), (step, specs[name]))
        findings += validation_findings(validation_errors, specs, pipeline_file)
        problems, count = binding_findings(steps, specs, pipeline_input_types(job), pipeline_file)
        binding_problems += [*problems, *value_findings(steps, job, root / "config.yml")]
        bindings += count
    command_problems = {name: command_findings(step, spec) for name, (step, spec) in components.items()}
    definitions = Definitions({name: step for name, (step, _) in components.items()}, bindings)
    report = scripts_checked(root, definitions, findings, command_problems, binding_problems, cache)
    if cache and not report.findings:  # a run starts from here: the next one needs no azure-ai-ml
        cache.store(VERDICT, definitions.to_data(), reads)
        with suppress(PlanError, KeyError):  # no training graph, or one the local runner cannot run: it says so itself
            cache.store(training_plan({}), plan_to_data(plan_from_job(jobs["training"])), reads)
    return report


def job_validation(job: Any, seen: set[Any]) -> dict[str, str]:
    """azure-ai-ml's validation of the pipeline job, and of its components' additional includes, which it validates
    only when it creates a component (those in ``seen`` were validated already)."""
    return {**job._validate().error_messages, **include_errors(job, seen)}


def scripts_checked(
    root: Path,
    definitions: Definitions,
    findings: Iterable[Finding] = (),
    command_problems: dict[str, list[Finding]] | None = None,
    binding_problems: Iterable[Finding] = (),
    cache: PlanCache | None = None,
) -> Report:
    """The rules on step scripts and the environment, with the azure-ai-ml half's findings, in one report. With a
    ``cache``, they are not applied again while every file they read last time, when they found nothing, is as it
    was (an edited script is read again, its component's spec too)."""
    kind = {**SCRIPTS_VERDICT, "components": definitions.to_data()}
    packages = cache.lookup(kind, int) if cache else None
    script_problems: dict[str, list[Finding]] = {}
    environment_problems: list[Finding] = []
    if packages is None:
        steps = definitions.components.values()
        with cache.tracing() if cache else nullcontext({}) as reads:
            for name, step in definitions.components.items():
                script_problems[name] = script_findings(step, spec_file(step.code, name))
            environment_problems, packages = environment_findings(root / "aml" / "environment.yml", steps)
        if cache and not any(script_problems.values()) and not environment_problems:
            cache.store(kind, packages, reads)
    findings = list(findings)
    for name in definitions.components:
        findings += (command_problems or {}).get(name, []) + script_problems.get(name, [])
    return Report(
        root,
        list(dict.fromkeys([*findings, *binding_problems, *environment_problems])),  # one finding, one line
        components=len(definitions.components),
        bindings=definitions.bindings,
        scripts=sum(script_call(step.command) is not None for step in definitions.components.values()),
        packages=packages,
    )
