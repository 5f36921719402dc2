"""Argument types the step scripts share: numbers in the range their component spec allows, and column names.

Each component folder is uploaded to Azure ML on its own; a component that uses this module lists it under
``additional_includes`` in its spec, and Azure ML (and the local runner) copies it beside the step script, where
``python <script>`` imports it as ``argument_types``. Imports only the standard library: ``check`` reads the
parsers that use it in an instant.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any


def ranged(kind: Callable[[str], float], low: float, high: float = math.inf) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high`` (no upper limit by default), the min and max of the
    input in the component's spec."""
    allowed = f"{low} to {high}" if math.isfinite(high) else f"{low} or more"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text} is outside the allowed {allowed}")
        return value

    return parse


def decoded(text: str, what: str, valid: Callable[[object], bool]) -> Any:
    """A value sent as base64-encoded JSON, which is safe in any command line; ``ArgumentTypeError`` if it is not."""
    try:
        value = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        value = None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {what} as base64-encoded JSON")
    return value


def column_name(text: str) -> str:
    """An argparse type: one column name. Column names come from users' CSVs and may hold anything, so they travel
    base64-encoded JSON, never as words of a command line."""
    return decoded(text, "a column name", lambda value: isinstance(value, str) and bool(value))


def column_names(text: str) -> list[str]:
    """An argparse type: a list of column names, base64-encoded JSON."""
    return decoded(
        text, "a list of column names", lambda value: isinstance(value, list) and all(isinstance(n, str) for n in value)
    )
