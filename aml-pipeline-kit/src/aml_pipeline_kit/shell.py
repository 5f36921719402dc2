"""Commands that are more than ``python <script>.py <args>``: run by a shell, as Azure ML runs every command.

A plain Python command keeps the warm step host (no shell, each value one argument). Anything else (``&&``,
``$VAR``, a pipe, ``Rscript``, ``echo``) runs as ``bash -c <line>``, the line filled in with every value
quoted for where it stands: a value is always one word and never shell syntax, whatever it holds.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Callable

from .plan import PLACEHOLDER

PYTHON_COMMANDS = frozenset({"python", "python3"})
SHELL = shutil.which("bash") or "/bin/sh"
# Outside quotes, these make a command more than one program and its arguments.
SHELL_SYNTAX = re.compile(r"[;&|<>()`*?~]|\$(?!\{\{|\[\[)")
# A command's leading `pip install ... &&`: it builds the environment, which is never built locally.
ENVIRONMENT_SETUP = re.compile(r"^\s*(?P<setup>(?:pip3?|conda|mamba)\s+install\b[^&;|\n]*?)\s*&&\s*")


def quoting(command: str) -> list[str]:
    """The quote each character of ``command`` stands in, as a shell reads it: ``""`` (none), ``"'"`` or ``'"'``;
    quote marks and backslash escapes themselves are marked ``"\\"``."""
    states: list[str] = []
    quote, index = "", 0
    while index < len(command):
        char = command[index]
        if char == "\\" and quote != "'" and index + 1 < len(command):
            states += ["\\", "\\"]
            index += 2
            continue
        if (quote and char == quote) or (not quote and char in "'\""):
            quote = "" if quote else char
            states.append("\\")
        else:
            states.append(quote)
        index += 1
    return states


def unquoted_text(command: str) -> str:
    """``command`` without whatever stands in quotes or is escaped: what a shell reads as syntax."""
    return "".join(char for char, quote in zip(command, quoting(command), strict=True) if not quote)


def needs_shell(command: str) -> bool:
    """Whether ``command`` is more than ``python <script>.py <args>``: shell syntax, or another program."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the shell will say what is wrong
        return True
    plain_python = len(words) >= 2 and words[0] in PYTHON_COMMANDS and words[1].endswith(".py")
    return not plain_python or bool(SHELL_SYNTAX.search(PLACEHOLDER.sub("", unquoted_text(command))))


def environment_setup(command: str) -> tuple[str, list[str]]:
    """``command`` without its leading environment set-up (``pip install ... &&``), and the set-up it had."""
    skipped = []
    while match := ENVIRONMENT_SETUP.match(command):
        skipped.append(match["setup"])
        command = command[match.end() :]
    return command, skipped


def program(command: str) -> str | None:
    """The program a command starts (its first word), if it can be told without running a shell."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return words[0] if words and "=" not in words[0] and not PLACEHOLDER.search(words[0]) else None


def shell_line(command: str, value: Callable[[re.Match[str]], str]) -> str:
    """``command`` with each placeholder replaced by ``value(match)``, quoted for where it stands: as one word
    outside quotes, escaped within double quotes, closed and reopened around its single quotes within single ones."""
    quotes = quoting(command)

    def filled(match: re.Match[str]) -> str:
        text = value(match)
        if quotes[match.start()] == "'":
            return text.replace("'", "'\\''")
        if quotes[match.start()] == '"':
            return re.sub(r'([\\"$`])', r"\\\1", text)
        return shlex.quote(text)

    return PLACEHOLDER.sub(filled, command)
