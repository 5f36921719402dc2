"""requirements.lock, what `make install` installs: it pins every dependency of pyproject.toml at a version that
pyproject.toml allows and everything those need in turn, this environment holds exactly those versions, and the
steps' environment on Azure ML (aml/conda.yml) pins the same versions of the packages both have. The engine,
aml-pipeline-kit, comes from where pyproject.toml's [tool.uv.sources] says rather than from the lock: the version
installed is the one pyproject.toml requires, and everything it needs is locked too."""

import tomllib
from collections.abc import Iterator
from importlib import metadata

import yaml
from conftest import PROJECT_ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = PROJECT_ROOT / "requirements.lock"
HINT = "edit pyproject.toml, then `make lock` and `make install`"
ENGINE = "aml-pipeline-kit"


def locked() -> dict[str, str]:
    """Name -> version of the lock's entries for this interpreter and platform."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (pin,) = requirement.specifier
            assert pin.operator == "==", f"{LOCK.name}: {line!r} is not an exact pin"
            if requirement.marker is None or requirement.marker.evaluate():
                pins[canonicalize_name(requirement.name)] = pin.version
    return pins


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(line) for line in [*project["dependencies"], *extras.get("dev", [])]]


def applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""})


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def installed_pins() -> dict[str, str]:
    """What `make install` installs: the lock's pins, and the engine from its source (the version installed)."""
    engine = installed_version(ENGINE)
    return {**locked(), **({ENGINE: engine} if engine else {})}


def unmet(requirement: Requirement, pins: dict[str, str], needed_by: str) -> Iterator[str]:
    name = canonicalize_name(requirement.name)
    engine = name == ENGINE
    if name not in pins:
        yield f"{needed_by} needs {requirement}, which {'is not installed' if engine else 'the lock lacks'}"
    elif not requirement.specifier.contains(pins[name], prereleases=True):
        yield f"{needed_by} needs {requirement}, {'the installed one is' if engine else 'the lock has'} {pins[name]}"


def test_the_lock_pins_every_dependency_at_a_version_pyproject_allows() -> None:
    pins = installed_pins()
    problems = [line for requirement in project_requirements() for line in unmet(requirement, pins, "pyproject.toml")]
    assert problems == [], f"{HINT}:\n" + "\n".join(problems)


def test_this_environment_holds_exactly_the_locked_versions() -> None:
    installed = {name: installed_version(name) for name in locked()}
    differing = {name: (version, installed[name]) for name, version in locked().items() if installed[name] != version}
    assert differing == {}, "locked vs. installed versions: run `make install`"


def test_everything_the_locked_packages_need_is_locked_too() -> None:
    """Walks the requirements from pyproject.toml through each installed package's metadata, extras included."""
    pins = installed_pins()
    problems: list[str] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(requirement, "pyproject.toml") for requirement in project_requirements()]
    while pending:
        requirement, needed_by = pending.pop()
        name, extras = canonicalize_name(requirement.name), frozenset(requirement.extras)
        found = list(unmet(requirement, pins, needed_by))
        problems += found
        if found or (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in metadata.requires(name) or []:
            needed = Requirement(line)
            if applies(needed, extras):
                pending.append((needed, f"{name}=={pins[name]}"))
    assert problems == [], f"{HINT}:\n" + "\n".join(sorted(set(problems)))


def test_the_azure_ml_steps_pin_the_locked_versions() -> None:
    conda = yaml.safe_load((PROJECT_ROOT / "aml" / "conda.yml").read_text())
    (pip_block,) = [entry["pip"] for entry in conda["dependencies"] if isinstance(entry, dict)]
    conda_pins = dict(line.split("==") for line in pip_block)
    pins = locked()
    conda_pins = {canonicalize_name(name): version for name, version in conda_pins.items()}
    shared = {name: version for name, version in conda_pins.items() if name in pins}
    assert {"mlflow-skinny", "scikit-learn", "pandas", "numpy"} <= set(shared)
    differing = {name: (version, pins[name]) for name, version in shared.items() if pins[name] != version}
    assert differing == {}, "aml/conda.yml vs. requirements.lock: keep the versions equal"
