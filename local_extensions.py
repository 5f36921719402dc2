"""Jinja filters of this template, which cookiecutter (and cruft) load through ``_extensions`` in cookiecutter.json."""

from __future__ import annotations

import math

import yaml
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
    escaped = "".join(
        TOML_ESCAPES.get(char) or (f"\\u{ord(char):04X}" if escaped_in_toml(char) else char) for char in str(value)
    )
    return f'"{escaped}"'


@simple_filter
def yaml_string(value: object) -> str:
    """``value`` as a double-quoted YAML scalar, written by PyYAML: what YAML must escape escaped (control characters,
    YAML's own line breaks), an apostrophe or a letter as typed, where ``tojson`` would write ``\\u0027``."""
    return yaml.safe_dump(str(value), allow_unicode=True, default_style='"', width=math.inf).rstrip("\n")
