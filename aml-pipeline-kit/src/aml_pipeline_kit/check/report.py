"""What ``check`` found: findings, the report, and where in a file a finding points."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class Finding:
    path: Path
    rule: str
    message: str
    hint: str
    line: int | None = None

    def format(self, *roots: Path) -> str:
        where = shown(self.path, *roots) + (f":{self.line}" if self.line else "")
        return f"{where}: [{self.rule}] {self.message} (hint: {self.hint})"


@dataclass
class Report:
    root: Path
    findings: list[Finding] = field(default_factory=list)
    components: int = 0
    bindings: int = 0
    scripts: int = 0
    packages: int = 0
    built: bool = True  # False: the pipeline could not be built or read, so its contracts went unchecked
    source_root: Path | None = None  # the project pipeline.py belongs to, when a copy of a project is checked

    def summary(self) -> str:
        checked = (
            f"{self.components} components, {self.bindings} bindings, {self.scripts} scripts, {self.packages} packages"
            if self.built
            else "the pipeline could not be built or read, so its contracts are not checked yet"
        )
        if not self.findings:
            return f"check: {checked} — no findings"
        return f"check: {len(self.findings)} finding{'s' if len(self.findings) > 1 else ''} ({checked})"

    def text(self) -> str:
        roots = [self.root, *filter(None, [self.source_root])]
        return "\n".join([*(finding.format(*roots) for finding in self.findings), self.summary()])


class CheckFailed(RuntimeError):
    """``check`` found something: a run or a submission must not start."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(report.summary())


def shown(path: Path, *roots: Path) -> str:
    """``path`` relative to the first of ``roots`` that holds it (the checked project, then pipeline.py's)."""
    for base in roots:
        if path.resolve().is_relative_to(base.resolve()):
            return path.resolve().relative_to(base.resolve()).as_posix()
    return str(path)


def line_of(path: Path, pattern: str, after: int = 0) -> int | None:
    """The number of the first line of ``path`` below line ``after`` that matches ``pattern``."""
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    regex = re.compile(pattern)
    return next((number for number in range(after + 1, len(lines) + 1) if regex.search(lines[number - 1])), None)


def key_pattern(name: str) -> str:
    """A YAML key ``name:`` or a Python dict key ``"name":`` at the start of a line."""
    return rf"^\s*[\"']?{re.escape(name)}[\"']?\s*:"


def flag_pattern(flag: str) -> str:
    return rf"(?<![\w-]){re.escape(flag)}(?![\w-])"


def placeholder(kind: str, name: str) -> str:
    return "${{" + f"{kind}.{name}" + "}}"


def spec_file(code: Path, component: str) -> Path:
    """The file in a component's folder that declares it (YAML first, then Python); the folder if none does."""
    candidates = sorted(
        (path for path in code.glob("*") if path.suffix in {".yml", ".yaml", ".py"}),
        key=lambda path: (path.suffix == ".py", path.name),
    )
    return next((path for path in candidates if component and component in path.read_text(errors="replace")), code)


def one_line(error: BaseException) -> str:
    """An error as one line. azure-ai-ml's schema errors carry JSON: a list of path and message, or a mapping."""
    text = str(error)
    try:
        details = json.loads(text[text.find("{") : text.rfind("}") + 1])
    except ValueError:
        details = None
    if isinstance(details, dict):
        entries = details.get("errors") or [{"path": key, "message": value} for key, value in details.items()]
        text = "; ".join(f"{entry.get('path')}: {entry.get('message')}" for entry in entries if isinstance(entry, dict))
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def syntax_finding(error: SyntaxError, path: Path) -> Finding:
    return Finding(path, "script-syntax", error.msg, "fix the syntax; the rest of the file is unchecked", error.lineno)
