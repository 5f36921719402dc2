"""A parallel node's step: an Azure ML parallel job (``type: parallel``, azure-ai-ml's ``parallel_run_function``) run
here with Azure ML's semantics. ``aml_graph`` makes the node a step whose command runs this file:

    python parallel_runner.py --settings <base64 JSON> --input-data <path> [--append-row-to <path>] -- <program args>

The settings are the node's (``ParallelSettings``), base64-encoded so that no value of them (a partition key, a
column name) is ever shell syntax. The step host runs it as any step: in the step's code copy, with its MLflow run's
environment, its log as stdout/stderr, in a process group of its own, which a Ctrl-C stops whole, workers included.

What Azure ML does and this does too (sources: azure-ai-ml's ``entities/_builders/parallel.py``,
``_job/parallel/parallel_task.py`` and ``retry_settings.py``, ``_schema/job/parameterized_parallel.py``; Microsoft's
"Use parallel jobs in pipelines" and ParallelRunConfig / ParallelRunStep docs):
- mini-batches: for a ``uri_folder``, ``mini_batch_size`` files each (default 10); for an ``mltable``,
  ``mini_batch_size`` bytes each (default 1 MB; azure-ai-ml turns "10kb" into 10240) as Microsoft's ``mltable``
  partitions the table, or one mini-batch per value of ``partition_keys``, which win over a size;
- workers: ``instance_count x max_concurrency_per_instance`` processes (capped at this machine's cores and at the
  number of mini-batches), each importing the entry script, calling ``init()`` once, then ``run(mini_batch)`` per
  mini-batch (``run(mini_batch, mini_batch_context)`` if it takes two arguments); ``sys.argv`` holds the
  ``program_arguments``, for the script's ``parse_known_args``; the step's environment, ``MLFLOW_RUN_ID`` included,
  so what the script logs with MLflow lands in the step's run;
- ``retry_settings``: ``timeout`` seconds per ``run()`` call (default 60), ``max_retries`` tries per mini-batch
  (default 3; azure-ai-ml: "the number of maximum tries for a failed or timeout mini batch"); a worker whose
  ``run()`` timed out is replaced by a new one, which calls ``init()`` again;
- thresholds, over the whole input (-1: ignore every failure, the default): ``mini_batch_error_threshold`` counts
  mini-batches that failed every try; ``error_threshold`` counts failed items, files of a ``uri_folder`` or rows of
  an ``mltable``: a failed mini-batch's items, and those a ``run()`` returned no result for ("each returned output
  element indicates one successful inference of input element"). Going above one stops the job, which fails;
- ``append_row_to``: every ``run()``'s returned rows in one file, the ``uri_file`` output itself or
  ``parallel_run_step.txt`` in a folder output (ParallelRunConfig's ``append_row_file_name`` default): a
  DataFrame's rows with their values separated by a space, without header or index, a list's elements one a line
  (what Microsoft's own readers of that file parse: ``pd.read_csv(path, delimiter=" ", header=None)``).

Memory stays bounded by the mini-batch: this process holds file names or partition numbers, each worker reads its
own mini-batch, and rows reach the output file by file, one mini-batch at a time.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import importlib.util
import inspect
import json
import logging
import multiprocessing
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

APPEND_ROW_FILE_NAME = "parallel_run_step.txt"
DEFAULT_FILES_PER_MINI_BATCH = 10
DEFAULT_BYTES_PER_MINI_BATCH = 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MAX_TRIES = 3
LOGGING_LEVELS = ("DEBUG", "INFO", "WARNING")


class ParallelError(RuntimeError):
    """The parallel job stops: its one line is the step's last."""


@dataclass(frozen=True)
class ParallelSettings:
    """A parallel node's settings, as azure-ai-ml holds them on the node (``Parallel``)."""

    entry_script: str
    input_type: str  # uri_folder, uri_file or mltable
    mini_batch_size: int | None = None  # files (uri_folder) or bytes (mltable); None: Azure ML's default
    partition_keys: tuple[str, ...] = ()
    instance_count: int = 1
    max_concurrency_per_instance: int = 1
    error_threshold: int = -1
    mini_batch_error_threshold: int = -1
    max_retries: int = DEFAULT_MAX_TRIES
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    logging_level: str = "INFO"
    environment_variables: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> str:
        return base64.b64encode(json.dumps(asdict(self), sort_keys=True).encode()).decode()

    @classmethod
    def decoded(cls, text: str) -> ParallelSettings:
        data = json.loads(base64.b64decode(text))
        return cls(**{**data, "partition_keys": tuple(data["partition_keys"])})

    def problems(self) -> list[str]:
        """What Azure ML would refuse in these settings, one line each (ranges from azure-ai-ml's docstrings)."""
        found = []
        for name in ("instance_count", "max_concurrency_per_instance", "max_retries"):
            if getattr(self, name) < 1:
                found.append(f"{name} is {getattr(self, name)}; it must be at least 1")
        for name in ("error_threshold", "mini_batch_error_threshold"):
            if getattr(self, name) < -1:
                found.append(f"{name} is {getattr(self, name)}; it must be -1 (ignore every failure) or more")
        if self.mini_batch_size is not None and self.mini_batch_size < 1 and not self.partition_keys:
            found.append(f"mini_batch_size is {self.mini_batch_size}; it must be at least 1")
        if self.timeout <= 0:
            found.append(f"retry_settings.timeout is {self.timeout}; it must be a positive number of seconds")
        if self.logging_level.upper() not in LOGGING_LEVELS:
            found.append(f"logging_level is {self.logging_level!r}; it must be one of {', '.join(LOGGING_LEVELS)}")
        if self.partition_keys and self.input_type != "mltable":
            found.append(f"partition_keys need an mltable input_data, not a {self.input_type}")
        return found


@dataclass(frozen=True)
class MiniBatch:
    """One mini-batch as the driver knows it: small (file names or a partition's number or key values)."""

    index: int
    files: tuple[str, ...] = ()
    partition: int | None = None
    key_values: dict[str, Any] | None = None

    def describe(self) -> str:
        if self.files:
            first = Path(self.files[0]).name
            return f"{first}" + (f" and {len(self.files) - 1} more file(s)" if len(self.files) > 1 else "")
        if self.key_values is not None:
            return ", ".join(f"{key}={value}" for key, value in self.key_values.items())
        return f"partition {self.partition}"


@dataclass(frozen=True)
class MiniBatchContext:
    """What ``run(mini_batch, mini_batch_context)`` receives, with the attributes entry scripts read."""

    minibatch_index: int
    partition_key_value: dict[str, Any]


# --- cutting the input into mini-batches ----------------------------------------------------------------------


def mini_batches(settings: ParallelSettings, input_data: Path) -> list[MiniBatch]:
    if settings.input_type == "mltable":
        # mltable reads through a runtime with threads of its own: a worker forked from a process that had loaded a
        # table would inherit it stopped mid-lock, and its first read would hang. The table is cut in a process of
        # its own, and only the workers load it.
        with multiprocessing.get_context("fork").Pool(1) as pool:
            return pool.apply(table_mini_batches, (settings, input_data))
    files = [input_data] if input_data.is_file() else sorted(p for p in input_data.rglob("*") if p.is_file())
    size = settings.mini_batch_size or DEFAULT_FILES_PER_MINI_BATCH
    chunks = [files[start : start + size] for start in range(0, len(files), size)]
    return [MiniBatch(index, files=tuple(map(str, chunk))) for index, chunk in enumerate(chunks)]


@functools.cache
def load_table(input_data: Path) -> Any:
    try:
        import mltable
    except ImportError:
        raise ParallelError(
            "an mltable input_data is read with Microsoft's mltable package, which is not installed here: "
            "pip install 'aml-pipeline-kit[mltable]'"
        ) from None
    return mltable.load(str(input_data))


def table_mini_batches(settings: ParallelSettings, input_data: Path) -> list[MiniBatch]:
    table = load_table(input_data)
    if settings.partition_keys:
        values = table._get_partition_key_values(list(settings.partition_keys))
        return [MiniBatch(index, key_values=dict(value)) for index, value in enumerate(values)]
    size = settings.mini_batch_size or DEFAULT_BYTES_PER_MINI_BATCH
    count = table._with_partition_size(size).get_partition_count()
    return [MiniBatch(index, partition=index) for index in range(count)]


def key_filter(key_values: dict[str, Any]) -> str:
    """An mltable filter expression selecting one partition's rows; names and values JSON-quoted, never spliced."""
    return " and ".join(f"col({json.dumps(key)}) == {json.dumps(value)}" for key, value in key_values.items())


def mini_batch_data(settings: ParallelSettings, input_data: Path, batch: MiniBatch) -> Any:
    """What ``run()`` gets: a list of file paths, or a pandas DataFrame of the mini-batch's rows only."""
    if batch.files:
        return list(batch.files)
    table = load_table(input_data)
    if batch.key_values is not None:
        return table.filter(key_filter(batch.key_values)).to_pandas_dataframe()
    size = settings.mini_batch_size or DEFAULT_BYTES_PER_MINI_BATCH
    return table._with_partition_size(size).select_partitions([batch.partition]).to_pandas_dataframe()


# --- a worker process --------------------------------------------------------------------------------------------


def rows_text(result: Any) -> tuple[str, int]:
    """``run()``'s result as append_row lines, and how many rows (results) it holds."""
    if result is None:
        return "", 0
    if hasattr(result, "to_csv") and hasattr(result, "columns"):  # a pandas DataFrame
        return result.to_csv(sep=" ", header=False, index=False), len(result)
    items = list(result)
    return "".join(f"{item}\n" for item in items), len(items)


def worker(
    number: int, settings: ParallelSettings, input_data: Path, program_arguments: list[str], channel: Connection
) -> None:
    """Import the entry script, ``init()`` once, then ``run()`` each mini-batch the driver sends, until it sends None.
    Each reply: ("done", index, rows file, rows, items) or ("failed", index, error line, items)."""
    os.environ.update(settings.environment_variables)
    logging.basicConfig(level=settings.logging_level.upper(), format=f"process{number:03d} %(levelname)s %(message)s")
    sys.argv = [settings.entry_script, *program_arguments]
    script = Path.cwd() / settings.entry_script
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(script.stem, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    spec.loader.exec_module(module)
    if hasattr(module, "init"):
        module.init()
    takes_context = len(inspect.signature(module.run).parameters) >= 2
    channel.send(("ready",))
    while (sent := channel.recv()) is not None:
        batch = MiniBatch(**sent)
        data = mini_batch_data(settings, input_data, batch)
        items = len(data)
        try:
            context = MiniBatchContext(batch.index, dict(batch.key_values or {}))
            result = module.run(data, context) if takes_context else module.run(data)
            text, rows = rows_text(result)
        except Exception as error:
            print(f"mini-batch {batch.index} ({batch.describe()}) failed in run():", flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            channel.send(("failed", batch.index, f"{type(error).__name__}: {error}".splitlines()[0], items))
            continue
        with tempfile.NamedTemporaryFile("w", delete=False, prefix="rows-", suffix=".txt") as rows_file:
            rows_file.write(text)
        channel.send(("done", batch.index, rows_file.name, rows, items))
        del data, result, text


def worker_main(*arguments: Any) -> None:
    try:
        worker(*arguments)
    except KeyboardInterrupt:
        os._exit(130)
    except BaseException:  # init() or the import failed: the worker's traceback, then it ends
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


# --- the driver ----------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    retried: int = 0
    items_in: int = 0
    failed_items: int = 0
    rows_out: int = 0


@dataclass
class Busy:
    batch: MiniBatch
    since: float


class Driver:
    def __init__(
        self, settings: ParallelSettings, input_data: Path, output: Path | None, program_arguments: list[str]
    ) -> None:
        self.settings, self.input_data, self.output, self.program_arguments = (
            settings,
            input_data,
            output,
            program_arguments,
        )
        self.context = multiprocessing.get_context("fork")
        self.workers: dict[Connection, Any] = {}  # channel -> process
        self.busy: dict[Connection, Busy] = {}
        self.ready: set[Connection] = set()  # workers whose init() has returned
        self.tries: dict[int, int] = {}
        self.tally = Tally()
        self.started_workers = 0
        self.first_failure = ""  # the first mini-batch that failed, and why: what a stopped job's error line ends with

    def start_worker(self) -> Connection:
        ours, theirs = self.context.Pipe()
        number = self.started_workers
        self.started_workers += 1
        process = self.context.Process(
            target=worker_main,
            args=(number, self.settings, self.input_data, self.program_arguments, theirs),
            daemon=True,
        )
        process.start()
        theirs.close()
        self.workers[ours] = process
        return ours

    def stop_worker(self, channel: Connection) -> None:
        process = self.workers.pop(channel)
        self.busy.pop(channel, None)
        self.ready.discard(channel)
        if process.is_alive():
            process.kill()
        process.join()
        channel.close()

    def run(self, batches: list[MiniBatch], rows: Any) -> Tally:
        total = len(batches)
        waiting: deque[MiniBatch] = deque(batches)
        processes = min(
            self.settings.instance_count * self.settings.max_concurrency_per_instance,
            len(os.sched_getaffinity(0)),
            max(total, 1),
        )
        print(
            f"parallel: {total} mini-batch(es) of {self.settings.input_type} {self.input_data.name}, "
            f"{processes} worker process(es)",
            flush=True,
        )
        for _ in range(processes if total else 0):
            self.start_worker()
        while waiting or self.busy:
            for channel in [channel for channel in self.ready if channel not in self.busy]:
                if not waiting:
                    break
                batch = waiting.popleft()
                self.tries[batch.index] = self.tries.get(batch.index, 0) + 1
                channel.send(asdict(batch))
                self.busy[channel] = Busy(batch, time.monotonic())
            deadline = min((busy.since for busy in self.busy.values()), default=time.monotonic())
            for channel in wait(
                list(self.workers), timeout=max(deadline + self.settings.timeout - time.monotonic(), 0)
            ):
                self.answer(channel, waiting, rows, total)
            now = time.monotonic()
            for channel, busy in list(self.busy.items()):
                if now - busy.since >= self.settings.timeout:
                    self.stop_worker(channel)
                    reason = f"run() took longer than retry_settings.timeout ({self.settings.timeout:g}s)"
                    self.retry_or_fail(busy.batch, reason, waiting, total)
                    self.start_worker()
        for channel in list(self.workers):
            channel.send(None)
            self.workers[channel].join()
            channel.close()
        self.workers.clear()
        return self.tally

    def answer(self, channel: Connection, waiting: deque[MiniBatch], rows: Any, total: int) -> None:
        """A worker's reply: ready after init(), a mini-batch done or failed, or its end (EOF)."""
        try:
            reply = channel.recv()
        except EOFError:
            if channel not in self.ready:  # as on Azure ML, an entry script that cannot start fails the job
                raise ParallelError(
                    f"the entry script {self.settings.entry_script}'s import or init() failed in a worker process; "
                    "its traceback is above"
                ) from None
            busy = self.busy.get(channel)
            self.stop_worker(channel)
            if busy:
                self.retry_or_fail(busy.batch, "its worker process ended (see above)", waiting, total)
            self.start_worker()
            return
        if reply[0] == "ready":
            self.ready.add(channel)
            return
        batch = self.busy.pop(channel).batch
        if reply[0] == "done":
            self.record_done(batch, reply, rows, total)
        else:
            self.retry_or_fail(batch, reply[2], waiting, total, items=reply[3])

    def record_done(self, batch: MiniBatch, reply: tuple, rows: Any, total: int) -> None:
        _, _, rows_file, count, items = reply
        if rows is not None:
            with open(rows_file) as source:
                shutil.copyfileobj(source, rows)
            rows.flush()
        Path(rows_file).unlink()
        self.tally.done += 1
        self.tally.items_in += items
        self.tally.rows_out += count
        self.tally.failed_items += max(items - count, 0)
        if count < items:
            self.failed_first(batch, f"run() returned {count} result(s) for its {items} item(s)")
        self.progress(batch, f"done, {items} item(s) in, {count} row(s) out", total)
        self.check_thresholds()

    def retry_or_fail(
        self, batch: MiniBatch, reason: str, waiting: deque[MiniBatch], total: int, items: int | None = None
    ) -> None:
        if self.tries[batch.index] < self.settings.max_retries:
            self.tally.retried += 1
            self.progress(batch, f"try {self.tries[batch.index]} failed ({reason}); retried", total)
            waiting.append(batch)
            return
        self.tally.failed += 1
        failed_items = items if items is not None else len(batch.files) or 1
        self.tally.items_in += failed_items
        self.tally.failed_items += failed_items
        self.failed_first(batch, reason)
        self.progress(batch, f"failed after {self.tries[batch.index]} tries: {reason}", total)
        self.check_thresholds()

    def failed_first(self, batch: MiniBatch, reason: str) -> None:
        self.first_failure = self.first_failure or f"mini-batch #{batch.index} ({batch.describe()}): {reason}"

    def check_thresholds(self) -> None:
        settings, tally = self.settings, self.tally
        if settings.mini_batch_error_threshold != -1 and tally.failed > settings.mini_batch_error_threshold:
            raise ParallelError(
                f"{tally.failed} mini-batch(es) failed, above mini_batch_error_threshold "
                f"{settings.mini_batch_error_threshold}: the parallel job stops; the first: {self.first_failure}"
            )
        if settings.error_threshold != -1 and tally.failed_items > settings.error_threshold:
            raise ParallelError(
                f"{tally.failed_items} item(s) failed, above error_threshold {settings.error_threshold}: "
                f"the parallel job stops; the first: {self.first_failure}"
            )

    def progress(self, batch: MiniBatch, what: str, total: int) -> None:
        finished = self.tally.done + self.tally.failed
        print(f"[mini-batch {finished}/{total}] #{batch.index} ({batch.describe()}): {what}", flush=True)

    def stop(self) -> None:
        for channel in list(self.workers):
            self.stop_worker(channel)


def summary(tally: Tally, total: int) -> str:
    return (
        f"parallel: {total} mini-batch(es): {tally.done} done, {tally.failed} failed, {tally.retried} retried; "
        f"{tally.items_in} item(s) in, {tally.failed_items} failed, {tally.rows_out} row(s) out"
    )


def entry_call(command: str) -> tuple[ParallelSettings, str] | None:
    """A parallel step's settings and its entry script's call, ``python <entry_script> <program_arguments>``, as
    ``check`` reads a command step's (``aml_graph.parallel_command`` wrote the command); None for any other step."""
    words = shlex.split(command.partition(" -- ")[0])
    if len(words) < 4 or Path(words[1]).name != Path(__file__).name or words[2] != "--settings":
        return None
    settings = ParallelSettings.decoded(words[3])
    return settings, f"python {shlex.quote(settings.entry_script)} {command.partition(' -- ')[2]}".strip()


def rows_path(append_row_to: Path) -> Path:
    """A uri_file output is the file itself; a folder output gets Azure ML's default file name in it."""
    return append_row_to / APPEND_ROW_FILE_NAME if append_row_to.is_dir() else append_row_to


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run an Azure ML parallel job's mini-batches here.")
    parser.add_argument("--settings", required=True, type=ParallelSettings.decoded)
    parser.add_argument("--input-data", required=True, type=Path)
    parser.add_argument("--append-row-to", type=Path)
    parser.add_argument("program_arguments", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: ParallelSettings = args.settings
    program_arguments = args.program_arguments[1:] if args.program_arguments[:1] == ["--"] else args.program_arguments
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the workers, then end as stopped
    driver = Driver(settings, args.input_data, args.append_row_to, program_arguments)
    batches: list[MiniBatch] = []
    try:
        if problems := settings.problems():
            raise ParallelError(problems[0])
        if not (Path.cwd() / settings.entry_script).is_file():
            raise ParallelError(f"its entry_script {settings.entry_script!r} is not in its code folder")
        batches = mini_batches(settings, args.input_data)
        output = rows_path(args.append_row_to) if args.append_row_to else None
        with open(output, "w") if output else contextlib.nullcontext() as rows:
            tally = driver.run(batches, rows)
    except ParallelError as error:
        driver.stop()
        print(summary(driver.tally, len(batches)), flush=True)
        print(f"error: {error}", flush=True)
        return 1
    except KeyboardInterrupt:
        driver.stop()
        return 130
    print(summary(tally, len(batches)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
