"""What a pipeline node needs that this machine lacks, told before anything runs: a cluster for distributed training,
a program or a package that is not installed here; and the environments nodes name, which are never built locally."""

from __future__ import annotations

import re
import shutil
from typing import Any

from .plan import PlanError
from .shell import PYTHON_COMMANDS, program

SHELL_BUILTINS = frozenset(
    {".", "[", "cd", "echo", "eval", "exec", "exit", "export", "printf", "set", "source", "test"}
)


def environment_name(environment: Any) -> str:
    """An environment as a node names it: a reference (``azureml:name@latest``, a registry URI) or what an
    anonymous one is built from."""
    if isinstance(environment, str):
        return environment
    image = environment.get("image") if isinstance(environment, dict) else getattr(environment, "image", None)
    return f"an anonymous environment on image {image}" if image else "an anonymous environment"


def reference_name(reference: str) -> str:
    """``azureml:name@latest`` / ``azureml:name:1`` -> ``name``: a workspace environment whatever its version."""
    return re.split(r"[@:]", reference.removeprefix("azureml:"), maxsplit=1)[0]


def local_environment(in_project: bool) -> str:
    """Where steps run instead of the environments their nodes name: a project's own environment (its venv, whose
    packages its pyproject.toml lists), or, for a job file run outside any project, the engine's."""
    return "this project's environment" if in_project else "this Python environment"


def refuse_missing_packages(qualified: str, environment: Any, in_project: bool) -> None:
    """An anonymous environment's conda file names pip packages its steps need: each must be installed here, where
    the steps run instead (conda's own entries, Python and pip, are the image's business)."""
    conda = environment.get("conda_file") if isinstance(environment, dict) else None
    if not isinstance(conda, dict):
        return
    from .check.environment import REQUIREMENT  # check reads this module: imported when there is a conda file

    pip = [
        dependency.get("pip") or [] for dependency in conda.get("dependencies") or [] if isinstance(dependency, dict)
    ]
    for entry in (str(entry) for entries in pip for entry in entries):
        match = REQUIREMENT.match(entry.strip())
        if match and not is_installed(match["name"]):
            remedy = "add it to pyproject.toml" if in_project else "install it here"
            raise PlanError(
                f"node {qualified!r}: its environment's conda file asks for {entry!r}, which "
                f"{local_environment(in_project)} lacks (environments are not built locally): {remedy}, or run on "
                "Azure ML"
            )


def is_installed(distribution: str) -> bool:
    import importlib.metadata  # tens of milliseconds, which a run of a kept plan spares

    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def refuse_distribution(node: Any, qualified: str) -> None:
    """A node that trains on several processes or instances: Azure ML runs it on a cluster, never here."""
    distribution = getattr(node, "distribution", None) or getattr(node.component, "distribution", None)
    resources = getattr(node, "resources", None) or getattr(node.component, "resources", None)
    instances = getattr(resources, "instance_count", None) or (resources or {}).get("instance_count", 1)
    if distribution is not None or (instances or 1) > 1:
        kind = getattr(distribution, "type", None) or "multi-node"
        raise PlanError(
            f"node {qualified!r} runs {kind} distributed training on {instances or 1} instance(s), which needs "
            "an Azure ML cluster: the local runner runs single-process steps"
        )


def refuse_missing_program(qualified: str, command: str, in_project: bool) -> None:
    """A command whose program (its first word) is not on this machine: ``Rscript`` without R, say."""
    name = program(command)
    if name and name not in PYTHON_COMMANDS | SHELL_BUILTINS and shutil.which(name) is None:
        raise PlanError(
            f"node {qualified!r}: its command runs {name!r}, which is not installed here "
            f"(environments are not built locally: steps run in {local_environment(in_project)})"
        )
