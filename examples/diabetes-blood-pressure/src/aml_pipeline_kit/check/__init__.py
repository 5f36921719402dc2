# Maintained by the template this project was rendered from, at the version in aml_pipeline_kit/__init__.py:
# update with `cruft update`, don't edit here (the template's own tests cover this file).
"""``check``: the project's contracts, verified offline in seconds. Run it after every edit.

azure-ai-ml loads the specs in aml/, builds the pipeline (which loads the components)
and validates it. Then come the contracts azure-ai-ml does not check, which would
otherwise fail minutes into a run on a cluster:

- command: every ``${{inputs.x}}`` / ``${{outputs.y}}`` in a component's command is declared, every
  required input and every output is used, and optional inputs appear only inside ``$[[...]]``;
- quoting: Azure ML fills the command in and runs it in a shell, so a string input stands inside single
  quotes (``'${{inputs.x}}'``, not within double quotes), unless its ``enum`` holds only words a shell
  reads as themselves; its values may then hold anything but a single quote (the local runner refuses
  one), and data-born text such as column names travels base64-encoded;
- values: config.yml's parameters fit the inputs they feed (type, enum, min, max), as Azure ML will check;
- script: the flags a command passes and its step script's argparse options agree;
- binding: every step input reads an existing pipeline input or upstream output of a compatible type;
- environment: the AML environment's conda file pins (==) every third-party package the step scripts import.

Step scripts are read with ``ast``, not imported: importing one costs seconds (pandas,
scikit-learn, MLflow). Only a script whose options are computed is imported, for its
``build_parser()``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..aml_graph import command_nodes, component_name, pipeline_input_types, serialised, step_from_node
from ..config_files import SettingsError
from ..plan import PlanError, Step
from .aml_validation import build_finding, spec_findings, validation_findings
from .binding import binding_findings
from .command import command_findings
from .environment import environment_findings
from .report import CheckFailed, Finding, Report, spec_file
from .script import script_call, script_findings
from .values import value_findings

__all__ = ["CheckFailed", "Finding", "Report", "check_project"]


def check_project(root: Path, build_pipeline: Callable[[], Any], pipeline_file: Path) -> Report:
    """Every check on the project at ``root``, whose pipelines ``build_pipeline()`` builds (from the ``@dsl.pipeline``
    graphs in ``pipeline_file``): one pipeline job, or several by name. Raises ``SettingsError`` if config.yml itself
    is wrong."""
    with collector_paused():
        report = checked(root, build_pipeline, pipeline_file.resolve())
    report.source_root = pipeline_file.resolve().parents[2]  # <project>/src/<package>/pipeline.py
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


def checked(root: Path, build_pipeline: Callable[[], Any], pipeline_file: Path) -> Report:
    findings = spec_findings(root / "aml")
    try:
        built = build_pipeline()
    except SettingsError:
        raise
    except Exception as error:  # whatever a component spec or pipeline.py makes azure-ai-ml raise
        return Report(root, [*findings, build_finding(error, root, pipeline_file)], built=False)
    jobs = list(built.values()) if isinstance(built, dict) else [built]
    every_step: list[Step] = []
    components: dict[str, tuple[Step, Path]] = {}  # a component used by several steps or graphs is checked once
    binding_problems: list[Finding] = []
    bindings = 0
    for job in jobs:
        steps: dict[str, Step] = {}
        specs: dict[str, Path] = {}
        for name, node in command_nodes(serialised(job)).items():
            try:
                step = step_from_node(name, node)
            except PlanError as error:  # its other findings would follow from this one
                hint = "bind only inputs the component declares"
                unreadable = Finding(pipeline_file, "binding-target", str(error), hint)
                return Report(root, [*findings, unreadable], built=False)
            steps[name], specs[name] = step, spec_file(step.code, component_name(node))
            components.setdefault(component_name(node), (step, specs[name]))
        findings += validation_findings(job._validate().error_messages, specs, pipeline_file)
        problems, count = binding_findings(steps, specs, pipeline_input_types(job), pipeline_file)
        binding_problems += [*problems, *value_findings(steps, job, root / "config.yml")]
        bindings += count
        every_step += steps.values()
    for step, spec in components.values():
        findings += command_findings(step, spec)
        findings += script_findings(step, spec)
    environment_problems, packages = environment_findings(root / "aml" / "environment.yml", every_step)
    return Report(
        root,
        list(dict.fromkeys([*findings, *binding_problems, *environment_problems])),  # one finding, one line
        components=len(components),
        bindings=bindings,
        scripts=sum(script_call(step.command) is not None for step, _ in components.values()),
        packages=packages,
    )
