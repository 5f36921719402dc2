"""Rule: the flags a command passes and its step script's argparse options agree."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..parallel_runner import entry_call
from ..plan import OPTIONAL_BLOCK, Step
from ..snapshot import missing_include, snapshot_folder
from .report import Finding, flag_pattern, line_of, one_line, syntax_finding

PYTHON_COMMANDS = frozenset({"python", "python3"})
FLAG = re.compile(r"^--?[A-Za-z]")
PRS_ARGUMENTS = (
    "--allowed_failed_percent",
    "--allowed_failed_count",
    "--task_overhead_timeout",
    "--progress_update_timeout",
    "--first_task_creation_timeout",
    "--resource_monitor_interval",
    "--copy_logs_to_parent",
)
VALUELESS_ACTIONS = frozenset({"store_true", "store_false", "store_const", "append_const", "count", "help", "version"})


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


def script_call(command: str) -> tuple[str, list[str], list[str]] | None:
    """``python <script>.py ARGS``: the script, the arguments always passed, those only inside ``$[[...]]``."""
    always = shlex.split(OPTIONAL_BLOCK.sub(" ", command))
    if len(always) < 2 or always[0] not in PYTHON_COMMANDS or not always[1].endswith(".py"):
        return None
    sometimes = [token for block in OPTIONAL_BLOCK.findall(command) for token in shlex.split(block)]
    return always[1], always[2:], sometimes


def script_findings(step: Step, spec: Path) -> list[Finding]:
    parallel = entry_call(step.command)
    call = script_call(parallel[1] if parallel else step.command)
    if call is None:  # not a Python script: nothing to read options from
        return []
    name, always, sometimes = call
    script = step.code / name
    if not script.is_file():
        what = "its parallel task's entry_script is" if parallel else "the command runs"
        message = f"{what} {name}, which is not in {step.code.name}/"
        return [Finding(spec, "script-missing", message, "correct the script's name")]
    if parallel and (missing := entry_functions_missing(script)):
        message = f"{name} defines no {missing}(), which Azure ML's parallel job calls"
        return [Finding(script, "parallel-entry", message, "define init() and run(mini_batch) in it")]
    if missing_include(step):  # it cannot be read as Azure ML would run it; azure-ai-ml's validation names the include
        return []
    try:
        options = script_options(script, step)
    except SyntaxError as error:
        return [syntax_finding(error, script)]
    except ScriptError as error:
        return [Finding(script, "script-parser", str(error), "spell its add_argument() calls out, or fix the import")]
    findings = argument_findings(script, spec, options, always, sometimes)
    if parallel:  # the entry script reads sys.argv with parse_known_args: PRS's own arguments pass it by
        findings = [finding for finding in findings if not is_prs_argument(finding)]
    return findings


def entry_functions_missing(script: Path) -> str | None:
    """The first of init() and run() a parallel entry script does not define at its top level."""
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return next((name for name in ("init", "run") if name not in defined), None)


def is_prs_argument(finding: Finding) -> bool:
    """A program_arguments flag that Azure ML's parallel run driver reads itself (Azure/azureml-examples pass them
    there: --allowed_failed_percent, --task_overhead_timeout, --progress_update_timeout...), not the script."""
    return finding.rule == "command-flag" and any(f"{flag} is passed" in finding.message for flag in PRS_ARGUMENTS)


def script_options(script: Path, step: Step) -> list[Option]:
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
        return options_from_parser(script, step)


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


def options_from_parser(script: Path, step: Step) -> list[Option]:
    """The options of the script's ``build_parser()``: imports the script from the step's snapshot, where
    ``python <script>`` finds the modules beside it and its additional includes; costs its imports' seconds."""
    assert step.code is not None  # the script is in it
    with snapshot_folder(step) as folder:
        copy = folder / script.relative_to(step.code)
        spec = importlib.util.spec_from_file_location(f"_checked_{script.stem}", copy)
        if spec is None or spec.loader is None:
            raise ScriptError(f"{script.name} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(copy.parent))
        try:
            spec.loader.exec_module(module)
            parser = module.build_parser()
        except Exception as error:
            failed = f"imported for build_parser(), which failed: {one_line(error)}"
            raise ScriptError(f"its options are computed, so it was {failed}") from None
        finally:
            sys.path.remove(str(copy.parent))
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
