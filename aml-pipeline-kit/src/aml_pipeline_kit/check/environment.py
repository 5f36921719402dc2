"""Rule: the AML environment names one build of its base image, and its conda file pins (==) every third-party
package the step scripts import."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..config_files import SettingsError, read_yaml
from ..plan import PlanError, Step
from ..snapshot import included, snapshot_folder
from ..step_imports import script_imports
from .report import Finding, line_of, syntax_finding

# Import names whose distributions are named otherwise. MLflow ships whole or as mlflow-skinny, which
# azureml-mlflow pairs with; other names are looked up in what is installed here.
DISTRIBUTIONS = {
    "bs4": ("beautifulsoup4",),
    "cv2": ("opencv-python", "opencv-python-headless"),
    "dateutil": ("python-dateutil",),
    "mlflow": ("mlflow-skinny", "mlflow"),
    "PIL": ("pillow",),
    "skimage": ("scikit-image",),
    "sklearn": ("scikit-learn",),
    "yaml": ("pyyaml",),
}
REQUIREMENT = re.compile(r"^(?:[\w.-]+::)?(?P<name>[A-Za-z0-9][\w.-]*)\s*(?:\[[^\]]*\])?\s*(?P<version>[^;#]*)")


@dataclass(frozen=True)
class Requirement:
    text: str
    pinned: bool
    line: int | None


def environment_findings(environment: Path, steps: Iterable[Step]) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    importers: dict[str, list[str]] = {}
    by_snapshot = {(step.code, step.includes): step for step in steps if step.code}
    for key in sorted(by_snapshot):
        step = by_snapshot[key]
        try:
            modules = snapshot_imports(step)
        except SyntaxError:
            findings += syntax_findings(source_files(step))
            continue
        except PlanError:  # a missing additional include: azure-ai-ml's validation names it
            continue
        for module in sorted({name.split(".")[0] for name in modules}):
            importers.setdefault(module, []).append(step.code.name)
    try:
        spec = read_yaml(environment)
        conda_file = spec.get("conda_file")
        requirements = conda_requirements(environment.parent / conda_file) if conda_file else None
    except SettingsError:  # an unreadable spec: spec-load reports it
        return findings, len(importers)
    findings += image_findings(environment, spec.get("image"))
    if requirements is None:
        message = f"the environment has no conda_file, so nothing shows it provides {', '.join(importers)}"
        findings.append(Finding(environment, "env-missing", message, "add conda_file: conda.yml pinning them"))
        return findings, len(importers)
    conda = environment.parent / conda_file
    for module, folders in importers.items():
        provided = provided_by(module, requirements)
        users = f"imported by the scripts in {', '.join(folders)}"
        if not provided:
            message = f"{module} is {users}, but {conda.name} does not provide it"
            findings.append(Finding(conda, "env-missing", message, pin_hint(module), line_of(conda, r"^\s*-?\s*pip:")))
        elif not any(requirement.pinned for requirement in provided):
            message = f"{provided[0].text} ({users}) is not pinned with =="
            findings.append(Finding(conda, "env-unpinned", message, pin_hint(module), provided[0].line))
    return findings, len(importers)


def image_findings(environment: Path, image: object) -> list[Finding]:
    """A base image must name one build: ``latest``, or no tag, changes what the steps run on without an edit here."""
    if not isinstance(image, str) or "@sha256:" in image:
        return []
    repository, _, tag = image.rpartition(":")
    if repository and "/" not in tag and tag != "latest":
        return []
    message = f"image {image} is not pinned: whatever it is tagged with next is what the steps run on"
    hint = "pin a build by its dated tag (the image's release notes list them) or by @sha256 digest"
    return [Finding(environment, "env-image", message, hint, line_of(environment, r"^image:"))]


def snapshot_imports(step: Step) -> list[str]:
    """The third-party modules a step's snapshot imports: its scripts' and its additional includes', read side by
    side as Azure ML uploads them (an included module or package is the step's own)."""
    with snapshot_folder(step) as folder:
        packages = {path.name for path in folder.iterdir() if path.is_dir()}
        return [name for name in script_imports([folder]) if name.split(".")[0] not in packages]


def source_files(step: Step) -> list[Path]:
    """The Python files of a step's snapshot where they are kept: its code folder's and its additional includes'."""
    assert step.code is not None
    sources = [step.code, *map(included, step.includes)]
    return sorted(path for source in sources for path in (source.glob("*.py") if source.is_dir() else [source]))


def syntax_findings(paths: Iterable[Path]) -> list[Finding]:
    findings = []
    for path in paths:
        try:
            ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as error:
            findings.append(syntax_finding(error, path))
    return findings


def conda_requirements(conda: Path) -> dict[str, Requirement]:
    """The conda file's packages, conda's and pip's alike, by normalised distribution name."""
    entries: list[str] = []
    for dependency in read_yaml(conda).get("dependencies") or []:
        entries += (
            [str(entry) for entry in dependency.get("pip") or []] if isinstance(dependency, dict) else [str(dependency)]
        )
    requirements = {}
    for entry in entries:
        if match := REQUIREMENT.match(entry.strip()):
            version = match["version"].strip()
            pinned = version.startswith("==") and "*" not in version
            requirements[normalised(match["name"])] = Requirement(entry, pinned, line_of(conda, re.escape(entry)))
    return requirements


def normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def provided_by(module: str, requirements: dict[str, Requirement]) -> list[Requirement]:
    """The requirements that provide an import name; what is installed here is asked only when the name is unusual."""
    found = [requirements[name] for name in DISTRIBUTIONS.get(module, (normalised(module),)) if name in requirements]
    if found or module in DISTRIBUTIONS:
        return found
    return [requirements[name] for name in installed_distributions().get(module, []) if name in requirements]


@cache
def installed_distributions() -> dict[str, list[str]]:
    """Import name -> installed distributions; reading every package's metadata takes a while, so only once."""
    import importlib.metadata

    return {
        module: [normalised(name) for name in names]
        for module, names in importlib.metadata.packages_distributions().items()
    }


def pin_hint(module: str) -> str:
    import importlib.metadata

    name = (DISTRIBUTIONS.get(module) or installed_distributions().get(module) or [normalised(module)])[0]
    try:
        return f"pin it under pip: '{name}=={importlib.metadata.version(name)}', the version installed here"
    except importlib.metadata.PackageNotFoundError:
        return f"pin it under pip: '{name}==<version>'"
