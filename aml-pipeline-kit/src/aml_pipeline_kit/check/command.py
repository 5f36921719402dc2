"""Rule: a component's command uses exactly the inputs and outputs it declares, optional ones inside ``$[[...]]``,
string and data inputs inside single quotes (a parallel step's excepted: see below)."""

from __future__ import annotations

import re
from pathlib import Path

from ..parallel_runner import entry_call
from ..plan import INPUT_PLACEHOLDER, OPTIONAL_BLOCK, OUTPUT_PLACEHOLDER, Step, unquoted_inputs
from .report import Finding, key_pattern, line_of, placeholder


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
    # A parallel step's input_data reaches Azure ML's driver, not a shell, and its program_arguments are written as
    # Azure's published parallel examples write them, unquoted; the local runner quotes every value it fills in.
    quoted_here = entry_call(command) is None
    for name in unquoted_inputs(command, step.inputs) if quoted_here else []:
        text = placeholder("inputs", name)
        if step.inputs[name].is_path:  # on Azure ML, its path ends with the file's name, which may hold anything
            kind, hint = "data", f"write '{text}' (single quotes): Azure ML fills in a path ending in the file's name"
        else:
            kind = "string"
            hint = f"write '{text}' (single quotes), or give it an enum of plain words; encode data-born text"
        message = f"{kind} input {name!r} is filled into the command outside single quotes, where a shell reads it"
        findings.append(Finding(spec, "command-quoting", message, hint, line_of(spec, re.escape(text))))
    return findings
