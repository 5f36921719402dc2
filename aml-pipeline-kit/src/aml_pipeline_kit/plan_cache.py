"""Built plans and ``check``'s verdict on the pipeline's definitions, kept between commands and keyed by content.

Building the pipeline with azure-ai-ml costs seconds, most of them importing azure-ai-ml, and a run or a check
pays it every time. What comes out depends only on what the build reads and on the code that reads it: the
files it opens under the project (component specs, ``component.py``, the specs in aml/; found by tracing the
build's ``open`` calls), config.yml, the Python packages that drive it (pipeline.py's and this one), the
installed distributions (azure-ai-ml's version first of all), the Python version and the project's place and
layout. An entry records the sha256 of every one of those files as it was read, and is used again only while
every one still hashes the same: edits count, time stamps never do. Step scripts are not read by the build, so
editing one keeps the entry; ``check`` reads them anew every time.

Entries live in ``<runs>/.plans/``, a file per kind of plan (the training pipeline with given parameters,
the scoring pipeline on given files, check's verdict), the few newest states of the project in each.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .plan import Plan, plan_from_data, plan_to_data
from .records import CORRUPT, ignored, read_record, write_record

ENGINE_DIR = Path(__file__).resolve().parent
FORMAT = 3  # bump when what an entry holds changes meaning
KEPT_STATES = 4  # per kind of plan: switching back and forth between a few edits stays fast
LAYOUT_FOLDERS = ("components", "aml")
IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache"})
INSTALLED_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth")
T = TypeVar("T")


VERDICT = {"kind": "check"}  # the azure-ai-ml half of check's findings, when the whole check found nothing
SCRIPTS_VERDICT = {"kind": "check-scripts"}  # the other half's, on the step scripts and the environment: nothing


def training_plan(overrides: dict[str, Any]) -> dict[str, Any]:
    """The kind of the training pipeline's plan with these ``-p`` parameters."""
    return {"kind": "training", "overrides": overrides}


def model_plan(kind: str, model: Path, data: Path) -> dict[str, Any]:
    """The kind of a pipeline's plan that runs this model on these rows, scoring or monitoring them: their places,
    not their contents."""
    return {"kind": kind, "model": str(model.resolve()), "data": str(data.resolve())}


def file_digest(path: Path) -> str | None:
    """sha256 of a file; None if there is none (a file the build looked for but did not find counts too)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        return "folder"


def source_of(path: str) -> Path:
    """A file as the build read it: a module's bytecode in ``__pycache__`` stands for its source."""
    try:
        return Path(importlib.util.source_from_cache(path))
    except ValueError:  # not a bytecode cache file
        return Path(path)


class ReadTracer:
    """The files under some folders that this process opens while ``tracing()``: Python's audit hook reports each
    ``open`` (imports included). The hook is installed once per process and costs nothing when no trace is on."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _active: ClassVar[list[ReadTracer]] = []
    _installed: ClassVar[bool] = False

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = tuple(str(folder.resolve()) + os.sep for folder in folders)
        self.read: dict[Path, str | None] = {}  # each file's sha256 when it was first opened
        self.complete = True  # False once a read could not be recorded

    @contextmanager
    def tracing(self) -> Iterator[dict[Path, str | None]]:
        with ReadTracer._lock:
            if not ReadTracer._installed:
                sys.addaudithook(ReadTracer._hook)
                ReadTracer._installed = True
            ReadTracer._active.append(self)
        try:
            yield self.read
        finally:
            with ReadTracer._lock:
                ReadTracer._active.remove(self)

    @staticmethod
    def _hook(event: str, arguments: tuple[Any, ...]) -> None:
        if event != "open" or not ReadTracer._active or not isinstance(arguments[0], str | os.PathLike):
            return
        path = os.path.abspath(os.fsdecode(arguments[0]))
        for tracer in list(ReadTracer._active):
            if path.startswith(tracer.folders):
                source = source_of(path)
                if source in tracer.read:
                    continue
                tracer.read[source] = None  # first, so that hashing it (an open of its own) is not traced again
                try:
                    tracer.read[source] = file_digest(source)
                except Exception:  # an error here would be raised by the build's own open()
                    tracer.complete = False


def layout(root: Path) -> str:
    """The names of every file under the project's components/ and aml/: a file added or removed there counts."""
    names = sorted(
        path.relative_to(root).as_posix()
        for folder in LAYOUT_FOLDERS
        for path in (root / folder).rglob("*")
        if not IGNORED_PARTS.intersection(path.parts) and path.suffix != ".pyc"
    )
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def installed(site_dirs: Iterable[Path]) -> str:
    """What is installed: the names of the distributions' metadata folders (name and version) in ``site_dirs``."""
    names = sorted(
        f"{folder}/{name}"
        for folder in dict.fromkeys(site_dirs)
        if folder.is_dir()
        for name in os.listdir(folder)
        if name.endswith(INSTALLED_SUFFIXES)
    )
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def default_site_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    return [Path(paths["purelib"]), Path(paths["platlib"])]


class PlanCache:
    """Plans and verdicts of the project at ``root``, kept in ``folder``. ``sources``: the folders of the Python
    packages whose code builds the pipeline (pipeline.py's); this package's own counts always."""

    def __init__(
        self, root: Path, folder: Path, sources: Iterable[Path] = (), site_dirs: Iterable[Path] | None = None
    ) -> None:
        self.root = root.resolve()
        self.folder = folder
        self.sources = sorted({ENGINE_DIR, *(source.resolve() for source in sources)})
        self.site_dirs = list(site_dirs) if site_dirs is not None else default_site_dirs()
        self._digests: dict[Path, str | None] = {}  # each file's sha256, taken once by this cache (a command's life)

    def lookup(self, kind: dict[str, Any], parse: Callable[[Any], T]) -> T | None:
        """What was stored for ``kind`` while the project was as it is now, as ``parse`` makes it of its JSON; None
        if nothing was (or what was is corrupt: said, and ignored)."""
        environment = self.environment()
        for state in self._states(kind):
            if state["environment"] == environment and all(
                self._digest(Path(path)) == digest for path, digest in state["files"].items()
            ):
                try:
                    return parse(state["value"])
                except CORRUPT as error:
                    ignored(self._path(kind), "cached plan", error)
                    return None
        return None

    @contextmanager
    def tracing(self) -> Iterator[dict[Path, str | None]]:
        """The sha256 of every file that counts for what the block builds, taken as the block opened it (the
        files read before any build, before the block). ``store`` takes it with the value built."""
        reads = {path: file_digest(path) for path in self.explicit_files()}
        tracer = ReadTracer([self.root, *self.sources])
        with tracer.tracing():
            yield reads
        if tracer.complete:
            reads.update({path: digest for path, digest in tracer.read.items() if path not in reads})
        else:
            reads.clear()  # a read went untraced: nothing built in the block may be stored

    def store(self, kind: dict[str, Any], value: Any, reads: dict[Path, str | None]) -> None:
        """Keep ``value`` for ``kind`` while the files in ``reads`` hash as they did (see ``tracing``)."""
        if reads:
            self._store(kind, {"environment": self.environment(), "files": reads, "value": value})

    def explicit_files(self) -> list[Path]:
        """Read before any build (config.yml and the specs in aml/, by the project's settings) or imported once per
        process (the packages' modules): counted whether the build is seen reading them or not."""
        specs = sorted(path for path in (self.root / "aml").rglob("*") if path.is_file())
        modules = [path for source in self.sources for path in sorted(source.rglob("*.py"))]  # check/ too
        return [self.root / "config.yml", *specs, *modules]

    def environment(self) -> dict[str, str]:
        return {
            "format": str(FORMAT),
            "root": str(self.root),
            "python": f"{sys.executable} {sys.version}",
            "installed": installed(self.site_dirs),
            "layout": layout(self.root),
        }

    def plan(self, kind: dict[str, Any], build: Callable[[], Any]) -> Plan:
        """The plan of the job ``build()`` makes, stored for ``kind``; built (azure-ai-ml) only if none is stored."""
        stored = self.lookup(kind, plan_from_data)
        if stored is not None:
            return stored
        from .aml_graph import plan_from_job

        with self.tracing() as reads:
            plan = plan_from_job(build())
        self.store(kind, plan_to_data(plan), reads)
        return plan

    def _digest(self, path: Path) -> str | None:
        if path not in self._digests:
            self._digests[path] = file_digest(path)
        return self._digests[path]

    def _path(self, kind: dict[str, Any]) -> Path:
        name = hashlib.sha256(json.dumps(kind, sort_keys=True, default=str).encode()).hexdigest()[:24]
        return self.folder / f"{name}.json"

    def _states(self, kind: dict[str, Any]) -> list[dict[str, Any]]:
        return read_record(self._path(kind), "cached plan", states) or []

    def _store(self, kind: dict[str, Any], state: dict[str, Any]) -> None:
        state["files"] = {str(path): digest for path, digest in state["files"].items()}
        states = [state, *(old for old in self._states(kind) if old.get("files") != state["files"])][:KEPT_STATES]
        with suppress(OSError):  # a cache: a project that cannot be written to is merely slower
            self.folder.mkdir(parents=True, exist_ok=True)
            write_record(self._path(kind), states)  # whole or not at all: runs started at once may store at once


def states(data: Any) -> list[dict[str, Any]]:
    """A plan cache file's states, newest first: each one's environment, files read and value."""
    if not all(isinstance(state["environment"], dict) and isinstance(state["files"], dict) for state in data):
        raise ValueError("its states are not what a plan cache stores")
    return list(data)
