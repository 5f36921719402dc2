"""What azure-ai-ml itself says: the specs in aml/ load, the pipeline builds and validates."""

from __future__ import annotations

import traceback
from pathlib import Path

from .report import Finding, key_pattern, line_of, one_line


def spec_findings(aml: Path) -> list[Finding]:
    from azure.ai.ml import load_compute, load_data, load_environment

    findings = []
    for name, load in (("compute.yml", load_compute), ("environment.yml", load_environment), ("data.yml", load_data)):
        try:
            load(aml / name)
        except Exception as error:  # azure-ai-ml's schema and file errors alike
            findings.append(Finding(aml / name, "spec-load", one_line(error), "fix it against the spec's $schema"))
    return findings


def build_finding(error: Exception, root: Path, pipeline_file: Path) -> Finding:
    """Where building the pipeline failed: the deepest line of this project's own code in the traceback."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if any(Path(frame.filename).resolve().is_relative_to(base) for base in (root.resolve(), pipeline_file.parent))
    ]
    path = Path(frames[-1].filename) if frames else pipeline_file
    return Finding(
        path,
        "pipeline-build",
        f"{type(error).__name__}: {one_line(error)}",
        "the components must load and pipeline.py must wire them by the names they declare",
        frames[-1].lineno if frames else None,
    )


def validation_findings(errors: dict[str, str], specs: dict[str, Path], pipeline_file: Path) -> list[Finding]:
    """azure-ai-ml's own validation: an error on ``jobs.<step>.<...>.<name>`` points at that step's spec."""
    findings = []
    for yaml_path, message in errors.items():
        parts = yaml_path.split(".")
        spec = specs.get(parts[1]) if len(parts) > 2 and parts[0] == "jobs" else None
        path, line = (spec, line_of(spec, key_pattern(parts[-1]))) if spec else (pipeline_file, None)
        hint = "azure-ai-ml's own validation of the built pipeline: correct the spec or pipeline.py as it says"
        findings.append(Finding(path, "aml-validate", f"{yaml_path}: {message}", hint, line))
    return findings
