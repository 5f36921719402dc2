"""Jinja filters of this template, which cookiecutter (and cruft) load through ``_extensions`` in cookiecutter.json."""

from __future__ import annotations

from cookiecutter.utils import simple_filter

# TOML basic strings: these by name, the other control characters (and DEL) as \uXXXX; everything else as typed.
TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


@simple_filter
def toml_string(value: object) -> str:
    """``value`` as a TOML basic string, quotes included: readable where Jinja's ``tojson`` would write an
    apostrophe as ``\\u0027`` and every non-ASCII letter as an escape."""
    escaped = "".join(
        TOML_ESCAPES.get(char) or (f"\\u{ord(char):04X}" if ord(char) < 0x20 or ord(char) == 0x7F else char)
        for char in str(value)
    )
    return f'"{escaped}"'
