"""Finish the render: bring in the training CSV, write its features into config.yml, remove the CI files of the
`ci` options not chosen, print the next steps.

Runs inside the freshly rendered project. Every check ran in pre_gen_project before a file was
written; this hook writes what that analysis found (handed over in a file it removes).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_file, is_copy_only_path
from cookiecutter.utils import work_in
from jinja2 import FileSystemLoader

# The values as JSON data: a raw string, because JSON's escapes must reach json.loads untouched.
VALUES: dict[str, str] = json.loads(r"""{{ cookiecutter | tojson }}""")

SHIPPED_SAMPLE = Path("data/diabetes.csv")
HANDOFF = Path(".render-data.json")  # written by pre_gen_project
CI_FILES = {"github": Path(".github"), "azure-devops": Path("azure-pipelines.yml")}  # what each `ci` option renders


def yaml_flow(value: str | list[str]) -> str:
    """A column name, or a list of them, as YAML in one line (PyYAML's escapes: any name reads back as it is)."""
    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, default_style='"', width=math.inf).strip()


def left_out(dropped: dict[str, str], indent: str) -> str:
    """The columns the features leave out, a line each: ``"house id": identifier (...)``."""
    return "".join(f"\n{indent}{yaml_flow(name)}: {reason}" for name, reason in dropped.items())


def write_features(config: Path, features: dict[str, list[str]], dropped: dict[str, str]) -> None:
    """Append the features to config.yml, as double-quoted YAML lists: letters as typed, escapes where YAML needs."""
    config.write_text(
        config.read_text()
        + "\n# The feature columns, inferred from every row of the CSV when the project was rendered.\n"
        + "# data_prep uses exactly these and fails on a missing one; edit them freely.\n"
        + "# Empty lists make data_prep infer them on every run."
        + (f"\n# Left out:{left_out(dropped, '#   ')}" if dropped else "")
        + f"\nfeatures:\n  numeric: {yaml_flow(features['numeric'])}\n"
        + f"  categorical: {yaml_flow(features['categorical'])}\n"
    )


ENGINE_PLACEHOLDER = '  "aml-pipeline-kit",  # version and source: written by the template\'s post-gen hook\n'
SOURCES_TABLE = "[tool.uv.sources]\n"


def write_engine_requirement(pyproject: Path, engine: dict[str, Any]) -> None:
    """The engine's version as the project's requirement, and where ``make install`` takes it from as its
    ``[tool.uv.sources]`` entry (none: PyPI's release of that version)."""
    text = pyproject.read_text(encoding="utf-8")
    source = engine["source"]
    entry = (
        "aml-pipeline-kit = { " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in source.items()) + " }\n"
        if source
        else "# none: rendered from an archive, the engine comes from PyPI\n"
    )
    text = text.replace(ENGINE_PLACEHOLDER, f'  "aml-pipeline-kit=={engine["version"]}",\n')
    pyproject.write_text(text.replace(SOURCES_TABLE, SOURCES_TABLE + entry), encoding="utf-8")


def bring_in_data(source: Path, destination: Path) -> None:
    """Copy the user's CSV in place of the shipped sample (which stays when it is the data)."""
    if VALUES["data_path"] == str(SHIPPED_SAMPLE):
        return
    SHIPPED_SAMPLE.unlink()
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)


def next_steps() -> str:
    return f"""
Rendered {VALUES["project_slug"]}/ ({VALUES["model"]} on {VALUES["__data_file"]}, target {VALUES["target_column"]!r}).

Next steps:
  cd {VALUES["project_slug"]}
  make install     # create .venv and install the project
  make run         # run the pipeline on this machine, tracked with MLflow
  make tune        # sweep the model's hyperparameters; the best go into config.yml
  make test        # the project's own tests, offline
  make score       # batch predictions with the last local model
  make monitor     # drift and quality of new rows against the training data
  make serve       # the last local model behind MLflow's HTTP server
  make submit      # submit to Azure ML (after `az login`; see README.md)
"""


def template_render(project_template: Path, relative: Path) -> bytes:
    """The project's file ``relative`` as the template renders it: cookiecutter's own ``generate_file``, or the
    template's bytes for a file ``_copy_without_render`` names."""
    context = {"cookiecutter": VALUES}
    if is_copy_only_path(relative.as_posix(), context):
        return (project_template / relative).read_bytes()
    sys.path.insert(0, str(project_template.parent))  # where cookiecutter finds the template's `_extensions`
    with tempfile.TemporaryDirectory() as scratch, work_in(project_template):
        environment = StrictEnvironment(context=context, keep_trailing_newline=True)
        environment.loader = FileSystemLoader(".")
        (Path(scratch) / relative).parent.mkdir(parents=True, exist_ok=True)
        generate_file(scratch, relative.as_posix(), context, environment)
        return (Path(scratch) / relative).read_bytes()


def remove_unselected_ci(ci: str, template: Path) -> None:
    """Remove the CI files the template renders for the ``ci`` options not chosen: only those, and only as it renders
    them. Rendered over an existing project (``cookiecutter -f``), the owner's own files (a workflow, CODEOWNERS) stay,
    and so does a file of the template they edited (kept by ``-s``), which is said in one line."""
    project_template = template / "{% raw %}{{cookiecutter.project_slug}}{% endraw %}"
    for option, path in CI_FILES.items():
        if option == ci:
            continue
        source = project_template / path
        written = [source, *sorted(source.rglob("*"))]
        for file in (entry.relative_to(project_template) for entry in written if entry.is_file()):
            if not file.is_file():
                continue
            if file.read_bytes() == template_render(project_template, file):
                file.unlink()
            else:
                print(
                    f"kept {file}: ci={ci} does not use it, but it is not what the template renders (edited?); "
                    "delete it if you no longer need it"
                )
        for folder in (entry.relative_to(project_template) for entry in reversed(written) if entry.is_dir()):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def main() -> int:
    found = json.loads(HANDOFF.read_text(encoding="utf-8"))
    HANDOFF.unlink()
    bring_in_data(Path(found["source"]), Path("data") / VALUES["__data_file"])
    write_features(Path("config.yml"), found["features"], found["dropped"])
    write_engine_requirement(Path("pyproject.toml"), found["engine"])
    remove_unselected_ci(VALUES["ci"], Path(found["template"]))
    if found["dropped"]:
        print(f"\nLeft out of the features (config.yml lists them too):{left_out(found['dropped'], '  ')}")
    print(next_steps())
    return 0


if __name__ == "__main__":
    sys.exit(main())
