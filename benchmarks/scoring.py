"""Benchmark using the rendered project's model: batch-scoring throughput and online latency, on this machine.

Renders the template's default project, trains its model once with ``run --local``, then:

1. batch scoring: for each size (10k, 100k, 1M rows by default), writes synthetic rows of the default schema without
   the target to a CSV and runs ``score --local --data <csv>`` as a fresh subprocess. It reports rows per second
   twice: over the score step's own seconds (from the run's ``run.json``: reading the CSV, checking it against the
   model's features, predicting, writing the predictions, a CSV per mini-batch) and over the whole command's wall
   clock (interpreter start-up, ``check``, building the pipeline and the step host included);
2. online latency: starts ``serve`` (MLflow's scoring server, as ``make serve`` does) on a free loopback port and
   sends ``--requests`` single-row requests one after the other over one keep-alive connection, after a few
   uncounted warm-up requests, and reports the median and 99th percentile of the round trips.

Usage::

    python benchmarks/scoring.py            # --sizes 10000,100000,1000000 --requests 500
    python benchmarks/scoring.py --quick    # smoke check: 10000 rows, 100 requests

Exits non-zero if rendering, training, scoring or serving fails, after printing the failing command's last lines.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from local_run import (
    ENGINE,
    MIB,
    PLAIN_SCRIPT_MODEL,
    RUN_COMPLETED,
    TEMPLATE_DIR,
    BenchmarkError,
    Project,
    load_average,
    load_project,
    measure,
    parse_sizes,
    render,
    say,
    synthetic_frame,
    table,
    tail,
)

DEFAULT_SIZES = "10000,100000,1000000"

HOST = "127.0.0.1"
DEFAULT_REQUESTS = 500
WARM_UP_REQUESTS = 20
STARTUP_SECONDS = 60.0
REQUEST_TIMEOUT = 10.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", type=parse_sizes, default=DEFAULT_SIZES, help="comma-separated rows to score (default: %(default)s)"
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="timed single-row online requests")
    parser.add_argument("--quick", action="store_true", help="smoke check: --sizes 10000 --requests 100")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="interpreter of the commands")
    parser.add_argument("--template", type=Path, default=TEMPLATE_DIR, help="the cookiecutter template to render")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a single command is killed")
    return parser


def synthetic_rows(project: Project, rows: int, seed: int) -> pd.DataFrame:
    """Rows of the default schema as a model is asked to score them: without the target."""
    return synthetic_frame(rows, seed).drop(columns=[project.target])


def score_seconds(output: str) -> float:
    """The score step's own seconds, from the ``run.json`` of the run that ``score --local`` printed."""
    completed = RUN_COMPLETED.search(output)
    if completed is None:
        raise BenchmarkError(f"`score --local` exited 0 but printed no 'run ... completed' line:\n{tail(output)}")
    summary = json.loads((Path(completed[2].strip()) / "run.json").read_text())
    (step,) = summary["steps"]
    return float(step["seconds"])


def batch_row(project: Project, rows: int, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> list[str]:
    csv = workdir / f"rows-{rows}.csv"
    synthetic_rows(project, rows, args.seed).to_csv(csv, index=False)
    argv = [str(args.python), "-m", ENGINE, "score", "--local", "--data", str(csv)]
    measurement = measure(argv, project.path, env, args.python, args.timeout)
    step = score_seconds(measurement.output)
    return [
        f"{rows:,}",
        f"{csv.stat().st_size / MIB:.1f}",
        f"{step:.2f}",
        f"{rows / step:,.0f}",
        f"{measurement.seconds:.2f}",
        f"{rows / measurement.seconds:,.0f}",
        f"{measurement.max_rss_bytes / MIB:.0f}",
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until_serving(port: int, server: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds until the server answers ``/ping``; at most ``STARTUP_SECONDS``."""
    started = time.perf_counter()
    while time.perf_counter() - started < STARTUP_SECONDS:
        if server.poll() is not None:
            raise BenchmarkError(f"the server exited with code {server.returncode}:\n{tail(log.read_text())}")
        ping = http.client.HTTPConnection(HOST, port, timeout=2)
        with contextlib.closing(ping), contextlib.suppress(OSError):  # OSError: not listening yet
            ping.request("GET", "/ping")
            if ping.getresponse().status == 200:
                return time.perf_counter() - started
        time.sleep(0.1)
    raise BenchmarkError(f"no answer on /ping within {STARTUP_SECONDS:.0f}s:\n{tail(log.read_text())}")


def request_bodies(project: Project, count: int, seed: int) -> list[bytes]:
    """One ``dataframe_split`` request per synthetic row."""
    split = json.loads(synthetic_rows(project, count, seed).to_json(orient="split", index=False))
    return [
        json.dumps({"dataframe_split": {"columns": split["columns"], "data": [row]}}).encode() for row in split["data"]
    ]


def round_trips(port: int, bodies: list[bytes]) -> list[float]:
    """Seconds of each request, sent one after the other over one keep-alive connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    seconds = []
    try:
        for body in bodies:
            started = time.perf_counter()
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            seconds.append(time.perf_counter() - started)
            if response.status != 200:
                raise BenchmarkError(f"the server answered {response.status}: {answer[:500]!r}")
    finally:
        connection.close()
    return seconds


def online_latency(project: Project, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> list[str]:
    port = free_port()
    log = workdir / "server.log"
    argv = [str(args.python), "-m", ENGINE, "serve", "--port", str(port)]
    with log.open("wb") as output:
        server = subprocess.Popen(
            argv, cwd=project.path, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        startup = wait_until_serving(port, server, log)
        bodies = request_bodies(project, WARM_UP_REQUESTS + args.requests, args.seed + 1)
        seconds = round_trips(port, bodies)[WARM_UP_REQUESTS:]
    finally:  # the server and the process it started share the session this one leads
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    percentiles = statistics.quantiles(seconds, n=100)
    milliseconds = [1000 * value for value in (percentiles[49], percentiles[98], statistics.fmean(seconds))]
    return [f"{len(seconds)}", *(f"{value:.1f}" for value in milliseconds), f"{startup:.1f}"]


BATCH_HEADER = ["rows", "CSV MiB", "step s", "rows/s (step)", "command s", "rows/s (command)", "peak MiB"]
ONLINE_HEADER = ["requests", "p50 ms", "p99 ms", "mean ms", "server start s"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.sizes, args.requests = (10_000,), 100
    if args.requests < 100:
        raise SystemExit("--requests must be at least 100 for a 99th percentile")
    args.python = args.python.absolute()
    workdir = Path(tempfile.mkdtemp(prefix="scoring-benchmark-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ["src", os.environ.get("PYTHONPATH")]))}
    batch: list[list[str]] = []
    online: list[list[str]] = []
    failed = False
    try:
        say("Using the model of the default project: batch scoring and online latency, on this machine")
        say(f"  python:   {args.python}, {os.cpu_count()} CPUs, {platform.platform()}")
        say(f"  load avg: {load_average()} at start (other work on this machine skews the figures)")
        project = load_project(render(args.template, args.python, workdir / "render", PLAIN_SCRIPT_MODEL))
        train = [str(args.python), "-m", ENGINE, "run", "--local"]
        trained = measure(train, project.path, env, args.python, args.timeout)
        say(f"  trained:  `run --local` on the shipped CSV in {trained.seconds:.1f}s")
        for rows in args.sizes:
            batch.append(batch_row(project, rows, args, env, workdir))
            say(f"  scored:   {rows:,} rows")
        online.append(online_latency(project, args, env, workdir))
        say(f"  served:   {args.requests} single-row requests")
    except BenchmarkError as error:
        say(f"\nERROR: {error}")
        failed = True
    finally:
        say("\n== Batch scoring: `score --local --data <synthetic CSV without the target>`, one run per size ==")
        say("(step: the score step's own seconds from run.json; command: the whole command's wall clock)")
        say(table(BATCH_HEADER, batch))
        say("\n== Online: `serve` (MLflow's scoring server), one row per request, one keep-alive connection ==")
        say(table(ONLINE_HEADER, online))
        say(f"\nload avg: {load_average()} at the end")
        if failed:
            say(f"kept {workdir} (step logs: render/<project>/runs/<run id>/<step>/step.log, server.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
