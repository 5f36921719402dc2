"""Rule: config.yml's values fit the inputs they feed (type, enum, min, max), as Azure ML will check, and reach a
command line whole: no single quote, no ``${{...}}`` (a binding to Azure ML), and data files named accordingly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plan import Step
from .report import Finding, key_pattern, line_of


def value_findings(steps: dict[str, Step], job: Any, config: Path) -> list[Finding]:
    """config.yml's values against the inputs they feed: what Azure ML would refuse when the job is submitted.
    One finding per value, naming every input that refuses it; a data file's name is found on the file itself."""
    values = {name: getattr(value, "path", value) for name, value in ((n, i.result()) for n, i in job.inputs.items())}
    refused: dict[tuple[str, str], list[str]] = {}
    data_files: dict[str, Path] = {}
    for step in steps.values():
        for name, declared in step.inputs.items():
            source = declared.binding.pipeline_input
            if source and (problem := declared.problem(values.get(source))):
                refused.setdefault((source, problem), []).append(f"{step.name}.inputs.{name}")
                if declared.is_path:
                    data_files[source] = Path(str(values[source]))
    findings = []
    for (source, problem), inputs in refused.items():
        message = f"{source}: {problem}, for {', '.join(inputs)}"
        if source in data_files:
            hint = "rename the file, and the path that names it"
            findings.append(Finding(data_files[source], "input-value", message, hint))
        else:
            hint = "set a value the component's input takes (its spec declares type, enum, min and max)"
            findings.append(Finding(config, "input-value", message, hint, line_of(config, key_pattern(source))))
    return findings
