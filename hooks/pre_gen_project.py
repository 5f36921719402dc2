"""Reject bad template values before cookiecutter writes a single file.

The values arrive as JSON data (rendered through ``tojson``), so nothing a user
types is ever executed. Every problem gets one line naming the value and the rule.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

# The values as JSON data: a raw string, because JSON's escapes must reach json.loads untouched.
VALUES: dict[str, str] = json.loads(r"""{{ cookiecutter | tojson }}""")

MODELS = ("ridge", "random_forest", "hist_gradient_boosting", "auto")
COMPUTE_TIERS = ("dedicated", "low_priority")
AML_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
AML_ASSET_RULE = "1-255 letters, digits, underscores or hyphens, starting with a letter or digit"
RULES_BY_PATTERN: dict[str, tuple[re.Pattern[str], str]] = {
    "project_slug": (
        re.compile(r"^(?=.{1,40}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$"),
        "at most 40 lowercase letters and digits separated by single hyphens, starting with a letter",
    ),
    "package_name": (
        re.compile(r"^[a-z][a-z0-9_]{0,39}$"),
        "a Python identifier of at most 40 lowercase letters, digits and underscores, starting with a letter",
    ),
    "compute_name": (
        re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}[A-Za-z0-9]$"),
        "2-16 letters, digits or hyphens, starting with a letter and not ending with a hyphen",
    ),
    "compute_size": (
        re.compile(r"^[A-Za-z][A-Za-z0-9_]+$"),
        "an Azure VM size such as Standard_DS3_v2",
    ),
    "experiment_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "registered_model_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "data_asset_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "environment_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "azure_subscription_id": (
        re.compile(r"^$|^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"),
        "empty or a subscription GUID",
    ),
    "azure_resource_group": (
        re.compile(r"^$|^[-\w.()]{0,89}[-\w()]$"),
        "empty or 1-90 letters, digits, underscores, hyphens, periods or parentheses, not ending with a period",
    ),
    "azure_workspace": (
        re.compile(r"^$|^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$"),
        "empty or 3-33 letters, digits, underscores or hyphens, starting with a letter or digit",
    ),
}


def check_pattern(name: str) -> str | None:
    pattern, rule = RULES_BY_PATTERN[name]
    if pattern.fullmatch(VALUES[name]):
        return None
    return f"{name}={VALUES[name]!r} is invalid: must be {rule}"


def check_choice(name: str, allowed: tuple[str, ...]) -> str | None:
    if VALUES[name] in allowed:
        return None
    return f"{name}={VALUES[name]!r} is invalid: must be one of {', '.join(allowed)}"


def parse_number(name: str, kind: Callable[[str], float]) -> float | None:
    try:
        return kind(VALUES[name].strip())
    except ValueError:
        return None


def check_integer(name: str, minimum: int) -> str | None:
    value = parse_number(name, int)
    if value is None or value < minimum:
        return f"{name}={VALUES[name]!r} is invalid: must be a whole number >= {minimum}"
    return None


def check_test_size() -> str | None:
    value = parse_number("test_size", float)
    if value is None or not 0 < value < 1:
        return f"test_size={VALUES['test_size']!r} is invalid: must be a number strictly between 0 and 1"
    return None


def check_instance_range() -> str | None:
    low = parse_number("compute_min_instances", int)
    high = parse_number("compute_max_instances", int)
    if low is None or high is None or low <= high:
        return None
    return (
        f"compute_min_instances={VALUES['compute_min_instances']!r} is invalid: "
        f"must not exceed compute_max_instances={VALUES['compute_max_instances']!r}"
    )


def check_text(name: str) -> str | None:
    if VALUES[name].strip():
        return None
    return f"{name}={VALUES[name]!r} is invalid: must not be empty"


def check_no_quote(name: str) -> str | None:
    # Column names reach the steps' command lines inside single quotes.
    if "'" not in VALUES[name]:
        return None
    return f"{name}={VALUES[name]!r} is invalid: column names must not contain a single quote (')"


def problems() -> list[str]:
    found = [check_pattern(name) for name in RULES_BY_PATTERN]
    found += [check_text(name) for name in ("project_name", "data_path", "target_column")]
    found += [check_no_quote(name) for name in ("target_column", "feature_columns", "drop_columns")]
    found += [check_choice("model", MODELS), check_choice("compute_tier", COMPUTE_TIERS)]
    found += [check_test_size(), check_integer("random_seed", 0)]
    found += [
        check_integer("compute_min_instances", 0),
        check_integer("compute_max_instances", 1),
        check_integer("compute_idle_seconds", 0),
        check_instance_range(),
    ]
    return [problem for problem in found if problem]


def main() -> int:
    found = problems()
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
