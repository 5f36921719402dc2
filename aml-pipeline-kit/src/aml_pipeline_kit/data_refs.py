"""Where a pipeline's data input lives, told apart as azure-ai-ml tells it apart when it submits a job.

``JobOperations._resolve_job_input`` (azure-ai-ml 1.35) passes URLs (any ``scheme://``) through, uploads
absolute and relative local paths (relative to the folder of the file that declares them), and reads
anything else holding ``:`` or ``@`` as a registered data asset (``name:version``, ``name@label``). Locally a
path is used where it is. A web URL reaches the step as the URL itself (as ``mode: direct`` gives it on Azure
ML: the local runner downloads nothing, and the run notes it, ``web_url_note``). An asset, a datastore or a
cloud storage URI needs a workspace or credentials, so it is refused before anything runs. Any of them runs
from a local copy that config.yml maps it to (``local.data_substitutes``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from .plan import PlanError

ASSET_PREFIX = "azureml:"
FILE_TYPES = frozenset({"uri_file"})
SUBSTITUTE_HINT = "map it to a local path under local.data_substitutes in config.yml"


def is_url(path: str) -> bool:
    """azure-ai-ml's rule: a scheme and a network location (``https://…``, ``wasbs://…``, ``azureml://…``)."""
    parsed = urlparse(path)
    return bool(parsed.scheme and parsed.netloc)


def reference_key(path: str) -> str:
    """A data reference as config.yml's substitutes name it: an asset without its ``azureml:`` prefix."""
    return path if path.startswith("azureml://") else path.removeprefix(ASSET_PREFIX)


def is_web_url(path: str) -> bool:
    return is_url(path) and urlparse(path).scheme in {"http", "https"}


def kind_of(path: str) -> str:
    """What ``path`` refers to, in the words of a refusal."""
    if path.startswith("azureml://"):
        return "an Azure ML datastore or registry URI, which needs a workspace"
    if is_url(path):
        return "a cloud storage URI, which needs Azure credentials and the network"
    return "a registered data asset, which needs a workspace"


def local_data(
    path: str, data_type: str | None, mode: str | None, base: Path, substitutes: Mapping[str, Path], where: str
) -> str:
    """The local path (or, for a web URL or ``mode: direct``, the URI itself) a step is given for a data input
    declared as ``path`` in a file in ``base``; ``where`` names the input in the one-line refusal."""
    reference = reference_key(str(path))
    if reference in substitutes:
        return checked_path(substitutes[reference], data_type, f"{where} ({reference}, substituted in config.yml)")
    local = not is_url(reference) and (os.path.isabs(reference) or not {":", "@"} & set(reference))
    if local:
        return checked_path(base / reference, data_type, where)
    if is_web_url(reference) or (mode == "direct" and is_url(reference)):  # Azure ML hands the step the URI itself
        return reference
    raise PlanError(f"{where} reads {reference!r}, {kind_of(reference)}: {SUBSTITUTE_HINT}")


def web_url_note(path: str, mode: str | None, substitutes: Mapping[str, Path], where: str) -> str | None:
    """What the run says once about a web URL it hands a step as the URL itself, where Azure ML would download it
    (its default mode); None if it does not."""
    reference = reference_key(str(path))
    if mode == "direct" or reference in substitutes or not is_web_url(reference):
        return None
    return (
        f"{where}: {reference} reaches the step as the URL itself, as mode direct would give it (Azure ML downloads "
        f"it for the step; the local runner downloads nothing): for a local copy, {SUBSTITUTE_HINT}"
    )


def checked_path(path: Path, data_type: str | None, where: str) -> str:
    """``path``, absolute, if it exists as the data type says (a file for ``uri_file``, a folder otherwise)."""
    resolved = path.resolve()
    wanted_file = data_type in FILE_TYPES
    if not resolved.exists():
        raise PlanError(f"{where}: {resolved} does not exist")
    if wanted_file != resolved.is_file():
        kind = "file" if wanted_file else "folder"
        raise PlanError(f"{where}: {resolved} is not a {kind}, as type {data_type or 'uri_folder'} needs")
    return str(resolved)
