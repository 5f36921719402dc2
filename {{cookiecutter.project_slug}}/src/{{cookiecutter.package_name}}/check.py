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

import ast
import difflib
import gc
import importlib.util
import json
import re
import shlex
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .aml_graph import command_nodes, component_name, pipeline_input_types, serialised, step_from_node
from .plan import INPUT_PLACEHOLDER, OPTIONAL_BLOCK, OUTPUT_PLACEHOLDER, Binding, PlanError, Step, unquoted_strings
from .settings import PROJECT_ROOT, Settings, SettingsError, read_yaml
from .step_host import script_imports

PACKAGE_DIR = Path(__file__).resolve().parent
PYTHON_COMMANDS = frozenset({"python", "python3"})
FLAG = re.compile(r"^--?[A-Za-z]")
VALUELESS_ACTIONS = frozenset({"store_true", "store_false", "store_const", "append_const", "count", "help", "version"})
# A source may feed an input of another type only where Azure ML converts it without loss.
WIDENINGS = frozenset({("integer", "number")})
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
MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class Finding:
    path: Path
    rule: str
    message: str
    hint: str
    line: int | None = None

    def format(self, root: Path) -> str:
        where = shown(self.path, root) + (f":{self.line}" if self.line else "")
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
        return "\n".join([*(finding.format(self.root) for finding in self.findings), self.summary()])


class CheckFailed(RuntimeError):
    """``check`` found something: a run or a submission must not start."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(report.summary())


class ScriptError(ValueError):
    """A step script's argparse options cannot be read."""


@dataclass(frozen=True)
class Option:
    """One ``add_argument``: its flags (none for a positional), whether required, how many values it takes."""

    flags: tuple[str, ...]
    name: str
    required: bool
    arity: int | None  # None: any number of values
    line: int | None = None


def check_project(settings: Settings) -> Report:
    """Every check on the project at ``settings.root``. Raises ``SettingsError`` if config.yml itself is wrong."""
    with collector_paused():
        return checked(settings)


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


def checked(settings: Settings) -> Report:
    from . import pipeline  # azure-ai-ml: seconds to import, paid only when a check runs

    root = settings.root
    findings = spec_findings(root / "aml")
    try:
        jobs = pipeline.checked_graphs(settings)
    except SettingsError:
        raise
    except Exception as error:  # whatever a component spec or pipeline.py makes azure-ai-ml raise
        return Report(root, [*findings, build_finding(error, root)], built=False)
    findings += schedule_findings(settings, jobs)
    pipeline_file = Path(pipeline.__file__).resolve()
    every_step: list[Step] = []
    specs: dict[str, Path] = {}
    components: dict[str, tuple[Step, Path]] = {}  # a component used by several steps or graphs is checked once
    binding_problems: list[Finding] = []
    bindings = 0
    for job in jobs.values():
        steps: dict[str, Step] = {}
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


def schedule_findings(settings: Settings, jobs: dict[str, Any]) -> list[Finding]:
    """The monitoring schedule's spec, loaded by azure-ai-ml as ``monitor --azure --schedule`` loads it."""
    from .azure_ml import MONITOR_SCHEDULE, monitor_schedule

    try:
        monitor_schedule(settings, jobs["monitoring"])
    except SettingsError as error:
        hint = "fix it against the spec's $schema; its recurrence is config.yml's monitoring.schedule"
        message = str(error).removeprefix(f"{settings.root / MONITOR_SCHEDULE} ")
        return [Finding(settings.root / MONITOR_SCHEDULE, "spec-load", message, hint)]
    return []


# --- locations -------------------------------------------------------------------------------------------------


def shown(path: Path, root: Path) -> str:
    """``path`` relative to the checked project, or to this package's project (pipeline.py when a copy is checked)."""
    for base in (root, PROJECT_ROOT):
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


# --- azure-ai-ml: specs, build, validation ------------------------------------------------------------------------


def spec_findings(aml: Path) -> list[Finding]:
    from azure.ai.ml import load_compute, load_data, load_environment

    findings = []
    for name, load in (("compute.yml", load_compute), ("environment.yml", load_environment), ("data.yml", load_data)):
        try:
            load(aml / name)
        except Exception as error:  # azure-ai-ml's schema and file errors alike
            findings.append(Finding(aml / name, "spec-load", one_line(error), "fix it against the spec's $schema"))
    return findings


def build_finding(error: Exception, root: Path) -> Finding:
    """Where building the pipeline failed: the deepest line of this project's own code in the traceback."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if any(Path(frame.filename).resolve().is_relative_to(base) for base in (root.resolve(), PACKAGE_DIR))
    ]
    path = Path(frames[-1].filename) if frames else PACKAGE_DIR / "pipeline.py"
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


# --- rule 1: the command and the component's declared inputs and outputs ------------------------------------------


def command_findings(step: Step, spec: Path) -> list[Finding]:
    command = step.command
    used = {"inputs": set(INPUT_PLACEHOLDER.findall(command)), "outputs": set(OUTPUT_PLACEHOLDER.findall(command))}
    always_used = set(INPUT_PLACEHOLDER.findall(OPTIONAL_BLOCK.sub("", command)))
    findings = []
    for kind, declared in (("inputs", step.inputs), ("outputs", step.outputs)):
        for name in sorted(used[kind] - declared.keys()):
            text = placeholder(kind, name)
            message = f"the command uses {text}, which the component does not declare"
            hint = f"declare {name!r} under {kind}, or correct the name in the command"
            findings.append(Finding(spec, "command-undeclared", message, hint, line_of(spec, re.escape(text))))
    for name, declared_input in step.inputs.items():
        flag = f"--{name.replace('_', '-')}"
        if declared_input.optional and name in always_used:
            rule, message = "command-optional", f"optional input {name!r} is used outside $[[...]]"
            hint = f"wrap its option so that it is dropped when unset: $[[{flag} {placeholder('inputs', name)}]]"
        elif not declared_input.optional and name not in used["inputs"]:
            rule, message = "command-unused", f"input {name!r} is declared but the command never passes it"
            hint = f"pass it, e.g. {flag} {placeholder('inputs', name)}, or remove it"
        else:
            continue
        findings.append(Finding(spec, rule, message, hint, line_of(spec, key_pattern(name))))
    for name in sorted(step.outputs.keys() - used["outputs"]):
        message = f"output {name!r} is declared but the command never passes {placeholder('outputs', name)}"
        hint = "pass it to the script, which writes the output there, or remove the output"
        findings.append(Finding(spec, "command-unused", message, hint, line_of(spec, key_pattern(name))))
    for name in unquoted_strings(command, step.inputs):
        text = placeholder("inputs", name)
        message = f"string input {name!r} is filled into the command outside single quotes, where a shell reads it"
        hint = f"write '{text}' (single quotes), or give it an enum of plain words; encode data-born text"
        findings.append(Finding(spec, "command-quoting", message, hint, line_of(spec, re.escape(text))))
    return findings


# --- rule 2: the command's flags and the step script's argparse options ------------------------------------------


def script_call(command: str) -> tuple[str, list[str], list[str]] | None:
    """``python <script>.py ARGS``: the script, the arguments always passed, those only inside ``$[[...]]``."""
    always = shlex.split(OPTIONAL_BLOCK.sub(" ", command))
    if len(always) < 2 or always[0] not in PYTHON_COMMANDS or not always[1].endswith(".py"):
        return None
    sometimes = [token for block in OPTIONAL_BLOCK.findall(command) for token in shlex.split(block)]
    return always[1], always[2:], sometimes


def script_findings(step: Step, spec: Path) -> list[Finding]:
    call = script_call(step.command)
    if call is None:  # not a Python script: nothing to read options from
        return []
    name, always, sometimes = call
    script = step.code / name
    if not script.is_file():
        message = f"the command runs {name}, which is not in {step.code.name}/"
        return [Finding(spec, "script-missing", message, "correct the script's name in the command")]
    try:
        options = script_options(script)
    except SyntaxError as error:
        return [syntax_finding(error, script)]
    except ScriptError as error:
        return [Finding(script, "script-parser", str(error), "spell its add_argument() calls out, or fix the import")]
    return argument_findings(script, spec, options, always, sometimes)


def script_options(script: Path) -> list[Option]:
    """The script's options from its ``add_argument`` calls, read without running it."""
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
    ]
    try:
        return [option_from_call(call) for call in calls]
    except ValueError:  # computed names or settings: only the parser itself knows them
        return options_from_parser(script)


def option_from_call(call: ast.Call) -> Option:
    """An ``add_argument`` call with literal arguments; ``ValueError`` if what matters is computed."""
    if any(keyword.arg is None for keyword in call.keywords):
        raise ValueError("**kwargs")
    names = [ast.literal_eval(argument) for argument in call.args]
    keywords = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg in {"action", "nargs", "required"}}
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError("option names")
    flags = tuple(name for name in names if name.startswith("-"))
    nargs = 0 if keywords.get("action") in VALUELESS_ACTIONS else keywords.get("nargs")
    required = keywords.get("required") is True if flags else nargs not in ("?", "*")
    return Option(flags, max(flags, key=len) if flags else names[0], required, arity(nargs), call.lineno)


def options_from_parser(script: Path) -> list[Option]:
    """The options of the script's ``build_parser()``: imports the script, which costs its imports' seconds."""
    spec = importlib.util.spec_from_file_location(f"_checked_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise ScriptError(f"{script.name} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(script.parent))  # as `python <script>` finds the modules beside it
    try:
        spec.loader.exec_module(module)
        parser = module.build_parser()
    except Exception as error:
        message = f"its options are computed, so it was imported for build_parser(), which failed: {one_line(error)}"
        raise ScriptError(message) from None
    finally:
        sys.path.remove(str(script.parent))
    return [
        Option(
            tuple(action.option_strings),
            max(action.option_strings, key=len, default=action.dest),
            bool(action.required),
            arity(action.nargs),
        )
        for action in parser._actions
    ]


def arity(nargs: Any) -> int | None:
    """How many values an option takes, from argparse's ``nargs``; None for any number."""
    if nargs is None or nargs == "?":
        return 1
    return nargs if isinstance(nargs, int) else None


def passed(tokens: list[str], options: dict[str, Option]) -> tuple[list[str], list[str]]:
    """The flags among ``tokens``, and the values no flag takes (positional arguments)."""
    flags: list[str] = []
    values: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not FLAG.match(token):
            values.append(token)
            continue
        flag, inline, _ = token.partition("=")
        flags.append(flag)
        wanted = options[flag].arity if flag in options else 1
        while not inline and index < len(tokens) and (wanted is None or wanted > 0) and not FLAG.match(tokens[index]):
            index += 1
            wanted = None if wanted is None else wanted - 1
    return flags, values


def argument_findings(
    script: Path, spec: Path, options: list[Option], always: list[str], sometimes: list[str]
) -> list[Finding]:
    by_flag = {flag: option for option in options for flag in option.flags}
    always_flags, always_values = passed(always, by_flag)
    sometimes_flags, sometimes_values = passed(sometimes, by_flag)
    findings = []
    for flag in dict.fromkeys([*always_flags, *sometimes_flags]):
        if flag not in by_flag:
            close = difflib.get_close_matches(flag, list(by_flag), n=1)
            hint = f"did you mean {close[0]}?" if close else f"add it to {script.name}'s parser, or drop it"
            message = f"{flag} is passed by the command but {script.name}'s parser has no such option"
            findings.append(Finding(spec, "command-flag", message, hint, line_of(spec, flag_pattern(flag))))
    positionals = [option for option in options if not option.flags]
    if (always_values or sometimes_values) and not positionals:
        value = (always_values or sometimes_values)[0]
        message = f"the command passes {value!r}, which no option of {script.name} takes"
        findings.append(Finding(spec, "command-flag", message, "pass it after the option it belongs to"))
    for option in options:
        if not option.required or set(option.flags) & set(always_flags):
            continue
        if option.flags:
            how = "only inside $[[...]]" if set(option.flags) & set(sometimes_flags) else "never"
            message = f"{script.name} requires {option.name} but the command {how} passes it"
        elif positionals.index(option) < len(always_values):
            continue
        else:
            message = f"{script.name} requires the positional argument {option.name!r} but the command omits it"
        hint = "pass it in the command (outside $[[...]]), or give it a default in the script"
        findings.append(Finding(script, "script-required", message, hint, option.line))
    return findings


# --- rule 3: every binding reads something that exists, of a compatible type --------------------------------------


def binding_findings(
    steps: dict[str, Step], specs: dict[str, Path], pipeline_inputs: dict[str, str], pipeline_file: Path
) -> tuple[list[Finding], int]:
    findings = []
    count = 0
    for step in steps.values():
        for name, declared in step.inputs.items():
            source = binding_source(declared.binding, steps, pipeline_inputs)
            if source is None:  # a literal or unbound: nothing to read
                continue
            count += 1
            description, source_type, choices = source
            target = f"{step.name}.inputs.{name}"
            if source_type is None:
                line = binding_line(pipeline_file, step.name, name)
                message = f"{target} reads {description}, which does not exist"
                findings.append(Finding(pipeline_file, "binding-source", message, f"{choices} (pipeline.py)", line))
            elif not compatible(source_type, declared.type):
                message = f"{target} is {declared.type} but reads {description}, which is {source_type}"
                hint = f"make the types agree here, or bind a {declared.type} source in pipeline.py"
                line = line_of(specs[step.name], key_pattern(name))
                findings.append(Finding(specs[step.name], "binding-type", message, hint, line))
    return findings, count


def binding_source(
    binding: Binding, steps: dict[str, Step], pipeline_inputs: dict[str, str]
) -> tuple[str, str | None, str] | None:
    """What a binding reads, its type (None: no such thing), and what exists instead; None if it reads nothing."""
    if binding.pipeline_input:
        choices = f"the pipeline inputs are: {', '.join(pipeline_inputs)}"
        return f"pipeline input {binding.pipeline_input!r}", pipeline_inputs.get(binding.pipeline_input), choices
    if binding.node:
        description = f"{binding.node}.outputs.{binding.output}"
        upstream = steps.get(binding.node)
        if upstream is None:
            return description, None, f"the steps are: {', '.join(steps)}"
        choices = f"{binding.node}'s outputs are: {', '.join(upstream.outputs)}"
        return description, upstream.outputs.get(binding.output or ""), choices
    return None


def value_findings(steps: dict[str, Step], job: Any, config: Path) -> list[Finding]:
    """config.yml's values against the inputs they feed: what Azure ML would refuse when the job is submitted.
    One finding per value, naming every input that refuses it."""
    values = {name: getattr(value, "path", value) for name, value in ((n, i.result()) for n, i in job.inputs.items())}
    refused: dict[tuple[str, str], list[str]] = {}
    for step in steps.values():
        for name, declared in step.inputs.items():
            source = declared.binding.pipeline_input
            if source and (problem := declared.problem(values.get(source))):
                refused.setdefault((source, problem), []).append(f"{step.name}.inputs.{name}")
    hint = "set a value the component's input takes (its spec declares type, enum, min and max)"
    findings = []
    for (source, problem), inputs in refused.items():
        message = f"{source}: {problem}, for {', '.join(inputs)}"
        findings.append(Finding(config, "input-value", message, hint, line_of(config, key_pattern(source))))
    return findings


def compatible(source: str, target: str) -> bool:
    return source == target or (source, target) in WIDENINGS


def binding_line(pipeline_file: Path, step: str, name: str) -> int | None:
    """The line binding ``name=`` in the call that makes ``step`` (the dsl keeps no positions; found by text)."""
    call = line_of(pipeline_file, rf"^\s*{re.escape(step)}\s*=")
    return line_of(pipeline_file, rf"\b{re.escape(name)}\s*=", after=call - 1) if call else None


# --- rule 4: the AML environment pins what the step scripts import -------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    text: str
    pinned: bool
    line: int | None


def environment_findings(environment: Path, steps: Iterable[Step]) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    importers: dict[str, list[str]] = {}
    for folder in sorted({step.code for step in steps}):
        try:
            modules = script_imports([folder])
        except SyntaxError:
            findings += folder_syntax_findings(folder)
            continue
        for module in sorted({name.split(".")[0] for name in modules}):
            importers.setdefault(module, []).append(folder.name)
    try:
        conda_file = read_yaml(environment).get("conda_file")
        requirements = conda_requirements(environment.parent / conda_file) if conda_file else None
    except SettingsError:  # an unreadable spec: spec-load reports it
        return findings, len(importers)
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


def folder_syntax_findings(folder: Path) -> list[Finding]:
    findings = []
    for path in sorted(folder.glob("*.py")):
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
