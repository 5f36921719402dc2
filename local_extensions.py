"""Jinja filters of this template, which cookiecutter (and cruft) load through ``_extensions`` in cookiecutter.json."""

from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from cookiecutter.config import BUILTIN_ABBREVIATIONS
from cookiecutter.repository import expand_abbreviations, is_repo_url, is_zip_file
from cookiecutter.utils import simple_filter

# TOML basic strings: these by name, the other control characters as \uXXXX (C1 and Unicode's line separators too,
# which TOML allows raw but editors and str.splitlines break lines at); everything else as typed.
TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def escaped_in_toml(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F or char in "\u2028\u2029"


@simple_filter
def toml_string(value: object) -> str:
    """``value`` as a TOML basic string, quotes included: readable where Jinja's ``tojson`` would write an
    apostrophe as ``\\u0027`` and every non-ASCII letter as an escape."""
    return quoted_toml(value)


def quoted_toml(value: object) -> str:
    escaped = "".join(
        TOML_ESCAPES.get(char) or (f"\\u{ord(char):04X}" if escaped_in_toml(char) else char) for char in str(value)
    )
    return f'"{escaped}"'


@simple_filter
def yaml_string(value: object) -> str:
    """``value`` as a double-quoted YAML scalar, written by PyYAML: what YAML must escape escaped (control characters,
    YAML's own line breaks), an apostrophe or a letter as typed, where ``tojson`` would write ``\\u0027``."""
    return yaml.safe_dump(str(value), allow_unicode=True, default_style='"', width=math.inf).rstrip("\n")


# --- where a render takes the engine from ---------------------------------------------------------------------------

ENGINE_DIR = Path(__file__).resolve().parent / "aml-pipeline-kit"  # in the template being rendered


@simple_filter
def engine_version(_: object) -> str:
    """The engine's version in the template being rendered: the version a render requires."""
    text = (ENGINE_DIR / "src" / "aml_pipeline_kit" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{ENGINE_DIR}: no __version__ in aml_pipeline_kit/__init__.py")
    return match[1]


@simple_filter
def engine_source(context: dict[str, Any]) -> str:
    """Where the render's ``make install`` takes the engine from, as a ``[tool.uv.sources]`` line: the template's own
    repository at the commit rendered (a git URL, or cruft), or its folder (a local checkout, offline: relative to the
    project when the project lies inside the template's folder, as the committed example does, else absolute); a
    comment when neither is known (a zip): the version is then taken from PyPI."""
    template, commit = str(context.get("_template", "")), context.get("_commit")
    if commit:  # cruft: the template's URL or folder, and the commit it renders
        local = Path(template)
        url = local.resolve().as_uri() if local.is_dir() else template
        return source_line({"git": url, "rev": commit, "subdirectory": ENGINE_DIR.name})
    where = expand_abbreviations(template, BUILTIN_ABBREVIATIONS)
    if is_zip_file(where):
        return "# none known (rendered from an archive): the engine comes from PyPI"
    if is_repo_url(where):  # cookiecutter cloned the repository into _repo_dir
        clone = Path(str(context["_repo_dir"]))
        origin, commit = git(clone, "remote", "get-url", "origin"), git(clone, "rev-parse", "HEAD")
        return source_line({"git": origin, "rev": commit, "subdirectory": ENGINE_DIR.name})
    project = Path(str(context["_output_dir"]), str(context["project_slug"])).resolve()
    inside = project.is_relative_to(ENGINE_DIR.parent)
    path = os.path.relpath(ENGINE_DIR, project) if inside else str(ENGINE_DIR)
    return source_line({"path": Path(path).as_posix()})


def git(repository: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repository), *arguments], capture_output=True, text=True, check=True
    ).stdout.strip()


def source_line(values: dict[str, str]) -> str:
    table = ", ".join(f"{key} = {quoted_toml(value)}" for key, value in values.items())
    return f"aml-pipeline-kit = {{ {table} }}"
