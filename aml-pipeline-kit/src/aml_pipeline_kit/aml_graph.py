"""The one module that reads azure-ai-ml's object model: a pipeline job -> a ``Plan``.

``plan_from_job`` reads the job as azure-ai-ml holds it in memory, built by ``pipeline.py`` or loaded from a
pipeline YAML file with ``load_job``: its serialised YAML loses what a local run needs (``./data`` becomes
``azureml:./data`` relative to nothing, ``False`` becomes ``0``, unbound outputs vanish). Pipeline components
are flattened into their steps (``outer.inner``), a sweep node into one step per trial and a step that keeps
the best trial's outputs. What needs a workspace, a cluster or a program not installed here is refused in one
line naming the node, before anything runs (``local_limits``). ``check`` reads the serialised YAML of the
project's own pipeline (``job_yaml``: ``serialised``, ``command_nodes``, ``step_from_node``, importable from here
too). The azure-ai-ml range it is tested with is pinned in pyproject.toml; its tests fail if an SDK upgrade
changes either.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import parallel_runner, sweep
from .data_refs import local_data, web_url_note
from .job_yaml import (
    NODE_OUTPUT,
    PARENT_INPUT,
    PARENT_OUTPUT,
    binding,
    command_nodes,
    component_name,
    pipeline_input_types,
    serialised,
    step_from_component,
    step_from_node,
    with_command,
)
from .local_limits import (
    environment_name,
    local_environment,
    reference_name,
    refuse_distribution,
    refuse_missing_packages,
    refuse_missing_program,
)
from .plan import (
    INPUT_PLACEHOLDER,
    OUTPUT_PLACEHOLDER,
    Binding,
    Plan,
    PlanError,
    Step,
    StepInput,
    in_dependency_order,
)
from .shell import environment_setup

# Names check and the tests import from here, where they lived before job_yaml.py.
__all__ = [
    "binding",
    "command_nodes",
    "component_name",
    "data_reference",
    "pipeline_input_types",
    "plan_from_job",
    "read_job",
    "serialised",
    "step_from_node",
]
SWEEP_SCRIPT = Path(sweep.__file__).resolve()
PARALLEL_SCRIPT = Path(parallel_runner.__file__).resolve()


def plan_from_job(job: Any, substitutes: Mapping[str, Path] | None = None) -> Plan:
    """The executable plan of a project's ``PipelineJob``: its steps in dependency order, pipeline components
    flattened. ``substitutes`` maps data references (asset names, URLs) to local paths."""
    return read_job(job, substitutes)[0]


def read_job(
    job: Any, substitutes: Mapping[str, Path] | None = None, own_environment: str | None = None, noted: bool = False
) -> tuple[Plan, dict[str, Path | None]]:
    """``plan_from_job``, and the spec file of each step's component (where ``check`` points its findings). With
    ``noted`` (a job file's plan), the plan notes once which environments its nodes name that the steps do not run
    in: all of them outside a project (``own_environment`` None), or all but the project's own, by name."""
    in_project = own_environment is not None or not noted
    reader = GraphReader(substitutes or {}, in_project)
    base = Path(job._base_path)
    for name, output in job.outputs.items():
        reader.refuse_output_path(f"pipeline output {name!r}", output._data)
    inputs = {name: reader.pipeline_input(name, value.result(), base) for name, value in job.inputs.items()}
    reader.read_nodes(job.jobs, "", None, base)
    steps = [reader.resolved(step) for step in reader.steps]
    if noted:
        reader.note_environments(own_environment)
    plan = Plan(
        inputs=inputs,
        steps=in_dependency_order(steps),
        outputs={name: reader.follow(source) for name, source in reader.outputs.items()},
        notes=tuple(dict.fromkeys(reader.notes)),
        experiment=job.experiment_name,
    )
    return plan, reader.sources


class GraphReader:
    """Walks a pipeline job's nodes, and its pipeline components' nodes, into steps."""

    def __init__(self, substitutes: Mapping[str, Path], in_project: bool) -> None:
        self.substitutes = substitutes
        self.in_project = in_project  # where the steps run: a project's environment, or the engine's own
        self.steps: list[Step] = []
        self.aliases: dict[tuple[str, str], tuple[str, str]] = {}  # a pipeline node's output -> what produces it
        self.outputs: dict[str, tuple[str, str]] = {}
        self.notes: list[str] = []
        self.environments: dict[str, list[str]] = {}  # environment -> the nodes that name it
        self.sources: dict[str, Path | None] = {}  # a component's step -> its spec file

    # --- values and bindings -----------------------------------------------------------------------------------

    def pipeline_input(self, name: str, value: Any, base: Path) -> Any:
        path, data_type, mode = data_reference(value)
        if path is None:
            return value
        return self.local_data(path, data_type, mode, base, f"pipeline input {name!r}")

    def local_data(self, path: str, data_type: str | None, mode: str | None, base: Path, where: str) -> str:
        if note := web_url_note(path, mode, self.substitutes, where):
            self.notes.append(note)
        return local_data(path, data_type, mode, base, self.substitutes, where)

    def binding(self, raw: Any, scope: dict[str, Binding] | None, prefix: str, base: Path, where: str) -> Binding:
        """A node input's binding (``_to_job_input()``): in a pipeline component, ``${{parent.inputs.x}}`` is
        what the outer node binds to ``x`` (``scope``), and node names take the outer node's prefix."""
        if raw is None:
            return Binding()
        path, data_type, mode = data_reference(raw)
        reference = path if path is not None else raw
        if isinstance(reference, str) and "${{" in reference:
            if match := PARENT_INPUT.match(reference):
                if scope is None:
                    return Binding(pipeline_input=match["name"], mode=mode)
                outer = scope.get(match["name"], Binding())
                return replace(outer, mode=mode or outer.mode)
            if match := NODE_OUTPUT.match(reference):
                return Binding(node=prefix + match["node"], output=match["output"], mode=mode)
            raise PlanError(f"{where} is bound to {reference!r}; the local runner reads whole bindings only")
        if path is not None:
            return Binding(value=self.local_data(path, data_type, mode, base, where), mode=mode)
        return Binding(value=raw)

    def node_bindings(
        self, node: Any, scope: dict[str, Binding] | None, prefix: str, base: Path, qualified: str
    ) -> dict[str, Binding]:
        return {
            name: self.binding(value._to_job_input(), scope, prefix, base, f"node {qualified!r} input {name!r}")
            for name, value in node.inputs.items()
        }

    def bind_outputs(self, node: Any, qualified: str, parent: str | None) -> None:
        """Where the node's outputs go: a ``${{parent.outputs.y}}`` of its pipeline, or nowhere (a run folder)."""
        for name, value in node.outputs.items():
            output = value._to_job_output()
            path = getattr(output, "path", None)
            if path and (match := PARENT_OUTPUT.match(path)):
                if parent is None:
                    self.outputs[match["name"]] = (qualified, name)
                else:
                    self.aliases[(parent, match["name"])] = (qualified, name)
            else:
                self.refuse_output_path(f"node {qualified!r} output {name!r}", output)

    def refuse_output_path(self, where: str, output: Any) -> None:
        path = output.get("path") if isinstance(output, dict) else getattr(output, "path", None)
        if path and "${{" not in str(path):
            raise PlanError(
                f"{where} is written to {path!r}, a datastore path that needs a workspace: locally every output "
                "goes under runs/; remove its path to run locally"
            )

    def follow(self, source: tuple[str, str]) -> tuple[str, str]:
        """A pipeline node's output -> the step output behind it, through nested pipeline components."""
        seen = set()
        while source in self.aliases and source not in seen:
            seen.add(source)
            source = self.aliases[source]
        return source

    def resolved(self, step: Step) -> Step:
        inputs = {}
        for name, spec in step.inputs.items():
            if spec.binding.node:
                node, output = self.follow((spec.binding.node, spec.binding.output or ""))
                spec = replace(spec, binding=replace(spec.binding, node=node, output=output))
            inputs[name] = spec
        return replace(step, inputs=inputs)

    # --- nodes -------------------------------------------------------------------------------------------------

    def read_nodes(self, jobs: dict[str, Any], prefix: str, scope: dict[str, Binding] | None, base: Path) -> None:
        parent = prefix.removesuffix(".") or None
        for name, node in jobs.items():
            qualified = prefix + name
            kind = getattr(node, "type", None)
            if kind in {"command", "pipeline", "parallel"} and isinstance(node.component, str):
                raise PlanError(
                    f"node {qualified!r} uses component {node.component!r}, registered in an Azure ML workspace: "
                    "the local runner runs components from their spec files (component: ./<spec>.yml)"
                )
            if kind == "command":
                refuse_distribution(node, qualified)
                bindings = self.node_bindings(node, scope, prefix, base, qualified)
                self.add_step(qualified, node.component, bindings)
            elif kind == "pipeline":
                self.read_pipeline_node(node, qualified, scope, prefix, base)
            elif kind == "sweep":
                self.read_sweep_node(node, qualified, scope, prefix, base)
            elif kind == "parallel":
                bindings = self.node_bindings(node, scope, prefix, base, qualified)
                self.add_step(qualified, node.component, bindings, command=parallel_command(node, qualified))
            else:
                raise PlanError(
                    f"node {qualified!r} is a {kind} job, which runs on Azure ML only: "
                    "the local runner runs command, parallel, pipeline and sweep nodes"
                )
            self.bind_outputs(node, qualified, parent)

    def add_step(
        self,
        qualified: str,
        component: Any,
        bindings: dict[str, Binding],
        trial: str = "",
        command: tuple[str, str | None, Any] | None = None,
    ) -> Step:
        """A step running ``component``; for a parallel node, ``command`` is the mini-batch driver's command line,
        its code folder and its task's environment (``parallel_command``)."""
        spec = component._to_dict()
        if command is not None:
            spec = with_command(spec, command)
        if spec.get("code") and not Path(spec["code"]).is_dir():
            raise PlanError(f"node {qualified!r}: its code {spec['code']!r} is not a local folder")
        command, skipped = environment_setup(spec["command"])
        if skipped:
            setup = "; ".join(skipped)
            self.notes.append(f"node {qualified!r}: `{setup}` not run (environments are not built locally)")
        refuse_missing_program(qualified, command, self.in_project)
        if spec.get("environment"):
            self.environments.setdefault(environment_name(spec["environment"]), []).append(qualified)
            refuse_missing_packages(qualified, spec["environment"], self.in_project)
        folder = Path(component._base_path)  # where its additional includes start from
        step = step_from_component(qualified + trial, {**spec, "command": command}, bindings, folder)
        step = replace(step, may_fail=bool(trial))  # a sweep trial may fail: the sweep picks from the others
        self.steps.append(step)
        source = getattr(component, "_source_path", None)
        self.sources[step.name] = Path(source) if source else None  # None: defined inline, in the job's file
        return step

    def read_pipeline_node(
        self, node: Any, qualified: str, scope: dict[str, Binding] | None, prefix: str, base: Path
    ) -> None:
        """A pipeline component's nodes as steps of this pipeline: each inner ``${{parent.inputs.x}}`` reads what
        this node binds to ``x`` (or ``x``'s default), inner names are prefixed with this node's."""
        component = node.component
        outer = self.node_bindings(node, scope, prefix, base, qualified)
        inner_scope = {}
        for name, spec in component.inputs.items():
            bound = outer.get(name, Binding())
            if bound == Binding(mode=bound.mode) and spec.default is not None:  # unbound
                bound = Binding(value=spec.default)
            inner_scope[name] = bound
        self.read_nodes(component.jobs, qualified + ".", inner_scope, Path(component._base_path))

    def read_sweep_node(
        self, node: Any, qualified: str, scope: dict[str, Binding] | None, prefix: str, base: Path
    ) -> None:
        """One step per trial (sampled values bound as literals), then a step named as the node that keeps the best
        trial's outputs, by the objective the trials log to MLflow."""
        if isinstance(node.trial, str):
            raise PlanError(f"node {qualified!r} sweeps component {node.trial!r}, registered in a workspace")
        bindings = self.node_bindings(node, scope, prefix, base, qualified)
        space = {name: value._to_rest_object() for name, value in (node.search_space or {}).items()}
        undeclared = sorted(set(space) - set(node.trial.inputs))
        if undeclared:
            raise PlanError(
                f"node {qualified!r} searches {undeclared[0]!r}, which its trial component does not declare"
            )
        algorithm = node.sampling_algorithm
        sampling = str(getattr(algorithm, "type", algorithm) or "random").lower()
        limits = node.limits
        try:
            trials = sweep.trial_values(
                space, sampling, getattr(limits, "max_total_trials", None), getattr(algorithm, "seed", None)
            )
        except sweep.SweepError as error:
            raise PlanError(f"node {qualified!r}: {error}") from None
        if sampling == "bayesian":
            self.notes.append(f"node {qualified!r}: bayesian sampling runs on Azure ML only; trials sampled at random")
        ignored = [
            name for name in ("max_concurrent_trials", "timeout", "trial_timeout") if getattr(limits, name, None)
        ]
        if ignored:
            self.notes.append(
                f"node {qualified!r}: limits {', '.join(ignored)} apply on Azure ML only; "
                "trials run here as --max-parallel allows, with no time limit"
            )
        if node.early_termination is not None:
            self.notes.append(f"node {qualified!r}: early termination applies on Azure ML only; every trial runs")
        runs = [
            self.add_step(
                qualified, node.trial, {**bindings, **{k: Binding(value=v) for k, v in values.items()}}, f".trial_{i}"
            )
            for i, values in enumerate(trials)
        ]
        self.steps.append(best_trial_step(qualified, node.objective, runs))

    def note_environments(self, own: str | None) -> None:
        others = {
            env: nodes
            for env, nodes in self.environments.items()
            if own is None or reference_name(env) != reference_name(own)
        }
        if others:
            named = "; ".join(f"{env} ({len(nodes)} step{'s' * (len(nodes) > 1)})" for env, nodes in others.items())
            self.notes.append(
                f"environments are not built locally: every step runs in {local_environment(self.in_project)}, "
                f"not in {named}"
            )


def best_trial_step(name: str, objective: Any, trials: list[Step]) -> Step:
    """The step that copies the best trial's outputs into its own, which are the sweep node's outputs."""
    outputs = trials[0].outputs
    inputs = {  # optional: a trial that failed has no outputs, and the best of the others is picked
        f"{trial.name.rsplit('.', 1)[1]}_{output}": StepInput(
            type=kind, binding=Binding(node=trial.name, output=output), optional=True
        )
        for trial in trials
        for output, kind in outputs.items()
    }
    words = ["python", str(SWEEP_SCRIPT), "--metric", objective.primary_metric, "--goal", objective.goal]
    words += ["--trials", str(len(trials)), "--output-names", *outputs]
    command = shlex.join(words) + " --outputs " + " ".join(placeholder("outputs", output) for output in outputs)
    for trial in trials:
        short = trial.name.rsplit(".", 1)[1]
        placeholders = " ".join(placeholder("inputs", f"{short}_{output}") for output in outputs)
        command += f" $[[--trial {shlex.quote(trial.name)} {placeholders}]]"
    return Step(
        name=name,
        display_name=f"best of {len(trials)} trials by {objective.primary_metric} ({objective.goal})",
        command=command,
        code=None,
        inputs=inputs,
        outputs=dict(outputs),
        deterministic=False,  # it reads the trials' metrics from MLflow, which its inputs do not carry
    )


def parallel_command(node: Any, qualified: str) -> tuple[str, str | None, Any]:
    """A parallel node (``type: parallel``, ``parallel_run_function``) as a step's command line: ``parallel_runner``
    with the node's settings, its ``input_data`` and ``append_row_to`` bindings and its task's ``program_arguments``;
    and the task's code folder and environment. Settings Azure ML would refuse are refused here, in one line."""
    task = node.task
    if task is None or task.type != "run_function":
        kind = getattr(task, "type", None)
        raise PlanError(
            f"node {qualified!r} is a parallel job with task type {kind!r}: the local runner runs run_function"
        )
    component = node.component
    match = INPUT_PLACEHOLDER.fullmatch(str(node.input_data or ""))
    if match is None or match[1] not in component.inputs:
        raise PlanError(f"node {qualified!r}: its input_data {node.input_data!r} is not ${{{{inputs.<an input>}}}}")
    input_type = component.inputs[match[1]].type
    if input_type not in {"uri_folder", "uri_file", "mltable"}:
        raise PlanError(f"node {qualified!r}: its input_data is a {input_type}; Azure ML cuts uri_folder and mltable")
    append = OUTPUT_PLACEHOLDER.fullmatch(str(task.append_row_to or ""))
    if task.append_row_to and (append is None or append[1] not in component.outputs):
        raise PlanError(
            f"node {qualified!r}: its append_row_to {task.append_row_to!r} is not ${{{{outputs.<an output>}}}}"
        )
    retry = setting(node.retry_settings)
    size = node.mini_batch_size
    numbers = {
        "mini_batch_size": size or None,  # azure-ai-ml turns "10kb" into 10240, and leaves 0 when unset
        "instance_count": setting(node.resources).get("instance_count") or 1,
        "max_concurrency_per_instance": node.max_concurrency_per_instance or 1,
        "error_threshold": -1 if node.error_threshold is None else node.error_threshold,
        "mini_batch_error_threshold": -1
        if node.mini_batch_error_threshold is None
        else node.mini_batch_error_threshold,
        "max_retries": retry.get("max_retries") or parallel_runner.DEFAULT_MAX_TRIES,
        "timeout": retry.get("timeout") or parallel_runner.DEFAULT_TIMEOUT_SECONDS,
    }
    unbound = [name for name, value in numbers.items() if value is not None and not isinstance(value, int | float)]
    if unbound:
        raise PlanError(
            f"node {qualified!r}: its {unbound[0]} is {numbers[unbound[0]]!r}; the local runner needs a number there"
        )
    settings = parallel_runner.ParallelSettings(
        entry_script=str(task.entry_script),
        input_type=input_type,
        partition_keys=tuple(node.partition_keys or ()),
        logging_level=str(node.logging_level or "INFO"),
        environment_variables={str(k): str(v) for k, v in (node.environment_variables or {}).items()},
        **numbers,
    )
    if problems := settings.problems():
        raise PlanError(f"node {qualified!r}: {problems[0]}")
    words = ["python", str(PARALLEL_SCRIPT), "--settings", settings.encoded()]
    command = shlex.join(words) + " --input-data " + placeholder("inputs", match[1])
    if append:
        command += " --append-row-to " + placeholder("outputs", append[1])
    command += " -- " + str(task.program_arguments or "")
    task_spec = component._to_dict()["task"]
    code = str((Path(component._base_path) / task_spec["code"]).resolve()) if task_spec.get("code") else None
    return command.strip(), code, task_spec.get("environment")


def check_nodes(job: Any) -> dict[str, dict[str, Any]]:
    """The nodes of a pipeline job that ``check`` reads (``command_nodes``), its parallel nodes each as the step the
    local runner runs (``parallel_command``); ``PlanError`` for a parallel node it cannot run."""
    parallel = {
        name: parallel_command(node, name)
        for name, node in job.jobs.items()
        if node.type == "parallel" and not isinstance(node.component, str)  # a registered one: Azure ML checks it
    }
    return command_nodes(serialised(job), parallel)


def setting(value: Any) -> dict[str, Any]:
    """A node's resources or retry_settings, a dict or azure-ai-ml's object of them."""
    if value is None:
        return {}
    return dict(value) if isinstance(value, dict) else {k: v for k, v in vars(value).items() if not k.startswith("_")}


def placeholder(kind: str, name: str) -> str:
    return "${{" + f"{kind}.{name}" + "}}"


def data_reference(value: Any) -> tuple[str | None, str | None, str | None]:
    """A data input's path, type and mode (``Input`` or its dict form); Nones for a literal or a bare binding."""
    if isinstance(value, dict):
        return value.get("path"), value.get("type"), value.get("mode")
    if hasattr(value, "path") and hasattr(value, "type"):
        return value.path, value.type, getattr(value, "mode", None)
    return None, None, None
