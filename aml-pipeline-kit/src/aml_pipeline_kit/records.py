"""What the machinery keeps between commands (reuse entries, cached plans and check's verdict, run summaries, the
tuned config.yml): written whole or not at all, and read without trusting it.

A record is written to a temporary file beside it, then renamed over it: a crash, an interrupt or a full disk
mid-write leaves the previous record (or none), never half of one. One that is corrupt all the same (cut short by a
copy, edited by hand, written by another version) is ignored, and said so once in one line on stderr: it is never
fatal, and the next write replaces it.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")
# What reading a record that is not JSON, or not the JSON expected, raises (a JSONDecodeError is a ValueError).
CORRUPT = (ValueError, KeyError, TypeError, AttributeError, IndexError)
said: set[Path] = set()  # the corrupt records said so already, by this process


@contextmanager
def written_whole(path: Path, newline: str | None = None) -> Iterator[IO[str]]:
    """A text file to write ``path`` through: it replaces ``path`` once the block ends without an error."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # left only if the block or the write failed


def write_atomically(path: Path, text: str) -> None:
    with written_whole(path) as handle:
        handle.write(text)


def write_record(path: Path, data: Any, indent: int | None = None) -> None:
    write_atomically(path, json.dumps(data, indent=indent))


def read_record(path: Path, what: str, parse: Callable[[Any], T]) -> T | None:
    """The record at ``path``, as ``parse`` makes it of its JSON (raising one of ``CORRUPT`` if it is not what it
    expects); None if there is none, or if it cannot be read or is corrupt, which is said in one line."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, NotADirectoryError):  # none, or no folder to hold one
        return None
    except (*CORRUPT, OSError) as error:
        ignored(path, what, error)
        return None


def ignored(path: Path, what: str, error: BaseException) -> None:
    """Say, once per process, that the record at ``path`` is corrupt and ignored."""
    if path in said:
        return
    said.add(path)
    detail = f"no {error.args[0]!r}" if isinstance(error, KeyError) else " ".join(str(error).split())[:200]
    print(f"warning: {path} is not a valid {what} ({detail or type(error).__name__}): ignored", file=sys.stderr)
