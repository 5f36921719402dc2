"""Parallel jobs (``type: parallel``, azure-ai-ml's ``parallel_run_function``) run by the local runner with Azure ML's
semantics: one pipeline through ``run --local --job`` (data/pipelines/parallel.yml), and the mini-batch driver,
``parallel_runner.py``, run as the step host runs it, in the entry script's code folder, for each failure mode:
its fixture entry script (data/pipelines/parallel/score/score.py) fails, hangs or drops the files it is told to."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
from projects import DATA, command, copy_example, latest_run

from aml_pipeline_kit.aml_graph import PARALLEL_SCRIPT
from aml_pipeline_kit.job_file import check_job_file
from aml_pipeline_kit.parallel_runner import ParallelSettings, entry_call

FIXTURES = DATA / "pipelines"
SETTINGS = ParallelSettings(
    entry_script="score.py",
    input_type="uri_folder",
    mini_batch_size=2,
    instance_count=2,
    max_concurrency_per_instance=1,
    max_retries=2,
    timeout=30,
)


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """The fixture's entry script in a code folder of its own, beside a state folder and five input files."""
    shutil.copytree(FIXTURES / "parallel" / "files", tmp_path / "files")
    (tmp_path / "state").mkdir()
    return Path(shutil.copytree(FIXTURES / "parallel" / "score", tmp_path / "code"))


def driver(code: Path, settings: ParallelSettings, *arguments: str) -> subprocess.Popen[str]:
    """The driver as the step host starts it: in the code folder, in a process group of its own."""
    words = [sys.executable, str(PARALLEL_SCRIPT), "--settings", settings.encoded()]
    words += ["--input-data", str(code.parent / "files"), "--append-row-to", str(code.parent / "rows.txt")]
    words += ["--", "--state", str(code.parent / "state"), "--scale", "10", *arguments]
    return subprocess.Popen(
        words, cwd=code, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, process_group=0
    )


def drive(code: Path, settings: ParallelSettings, *arguments: str) -> tuple[int, list[str]]:
    process = driver(code, settings, *arguments)
    output, _ = process.communicate(timeout=60)
    return process.returncode, [line for line in output.splitlines() if line.strip()]


def state(code: Path, prefix: str) -> list[str]:
    return sorted(path.name for path in (code.parent / "state").glob(f"{prefix}-*"))


# --- a pipeline through the CLI -------------------------------------------------------------------------------------


@pytest.mark.slow  # runs a pipeline
def test_a_parallel_node_runs_in_a_pipeline_job(
    tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    job = Path(shutil.copytree(FIXTURES, tmp_path / "pipelines")) / "parallel.yml"
    result = command(capfd, project, "run", "--local", "--job", str(job), "-p", "fail_on=part_3", "-p", "drop_on=5")
    assert result.returncode == 0, result.stderr
    run_dir = project / "runs" / latest_run(project)["run_id"]
    log = (run_dir / "score" / "step.log").read_text().splitlines()
    # part_3 and part_4 share a mini-batch, which fails both tries; part_5 is scored without a row: a failed item
    assert log[-1] == ("parallel: 3 mini-batch(es): 2 done, 1 failed, 1 retried; 5 item(s) in, 3 failed, 4 row(s) out")
    assert any("#1 (part_3.csv and 1 more file(s)): try 1 failed (ValueError: cannot score" in line for line in log)
    rows = (run_dir / "score" / "scores" / "scores").read_text().splitlines()  # the uri_file output itself
    assert sorted(rows) == ["1 1 part_1.csv 10.0", "1 2 part_1.csv 10.0", "2 1 part_2.csv 20.0", "2 2 part_2.csv 20.0"]
    assert len(list((run_dir / "score" / "state").glob("init-*"))) == 2  # one init() per worker, two workers
    # what the entry script logs with MLflow lands in the step's own run, from each worker, as on Azure ML
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    parent = client.get_run(latest_run(project)["mlflow_run_id"])
    (step,) = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert (step.info.run_name, step.info.status) == ("score", "FINISHED")
    assert len(client.get_metric_history(step.info.run_id, "workers_started")) == 2  # from each worker's init()
    logged = client.get_metric_history(step.info.run_id, "mini_batch_rows")
    assert sorted(metric.value for metric in logged) == [0.0, 4.0]  # the two done mini-batches: part_5's, then 1 and 2


# --- the driver: retries, timeouts, thresholds, rows, workers ------------------------------------------------------


def test_a_failing_mini_batch_is_retried_and_counted(code: Path) -> None:
    returncode, lines = drive(code, SETTINGS, "--fail-on", "part_3", "--flaky-on", "part_5")
    assert returncode == 0
    assert lines[0] == "parallel: 3 mini-batch(es) of uri_folder files, 2 worker process(es)"
    assert lines[-1] == "parallel: 3 mini-batch(es): 2 done, 1 failed, 2 retried; 5 item(s) in, 2 failed, 6 row(s) out"
    assert any("#2 (part_5.csv): try 1 failed (RuntimeError: a transient failure); retried" in line for line in lines)
    assert any("#1 (part_3.csv and 1 more file(s)): failed after 2 tries: ValueError" in line for line in lines)
    rows = (code.parent / "rows.txt").read_text().splitlines()  # Azure ML's append_row format: space-separated
    assert sorted(rows) == sorted(
        f"{n} {k} part_{n}.csv {n * 10}.0" for n in (1, 2, 5) for k in (1, 2)
    )  # program_arguments reached run(): --scale 10


def test_init_runs_once_per_worker_and_run_once_per_mini_batch(code: Path) -> None:
    settings = replace(SETTINGS, mini_batch_size=1)
    returncode, lines = drive(code, settings)
    assert returncode == 0, lines
    inits = state(code, "init")
    assert len(inits) == 2  # five mini-batches, two workers, one init() each
    workers = {name.removeprefix("init-") for name in inits}
    assert {name.split("-")[1] for name in state(code, "run")} <= workers
    assert len(state(code, "run")) == 5
    assert sum(line.startswith("[mini-batch ") and ": done," in line for line in lines) == 5


def test_a_mini_batch_over_its_timeout_is_stopped_and_retried_in_a_new_worker(code: Path) -> None:
    # 3 s: far above what run() takes on its two small files, even on a busy machine; far below the slow one's 60 s
    settings = replace(SETTINGS, timeout=3, instance_count=1)
    returncode, lines = drive(code, settings, "--slow-on", "part_1")
    assert returncode == 0, lines
    assert any("#0 (part_1.csv and 1 more file(s)): try 1 failed (run() took longer than" in line for line in lines)
    assert len(state(code, "init")) == 2  # the worker that hung was replaced, and its replacement ran init()
    assert lines[-1].startswith("parallel: 3 mini-batch(es): 3 done, 0 failed, 1 retried; 5 item(s) in")


@pytest.mark.parametrize(
    ("threshold", "arguments", "error", "first"),
    [
        (
            {"mini_batch_error_threshold": 0},
            ("--fail-on", "part_5"),
            "1 mini-batch(es) failed, above mini_batch_",
            "#2 (part_5.csv): ValueError: cannot score ['part_5.csv']",
        ),
        (
            {"error_threshold": 1},
            ("--drop-on", "part"),
            "2 item(s) failed, above error_threshold 1",
            "#0 (part_1.csv and 1 more file(s)): run() returned 0 result(s) for its 2 item(s)",
        ),
        ({"error_threshold": 2, "mini_batch_error_threshold": 1}, ("--fail-on", "part_5"), None, None),
    ],
)
def test_the_error_thresholds_stop_the_job_above_them_saying_why_the_first_mini_batch_failed(
    code: Path, threshold: dict[str, int], arguments: tuple[str, ...], error: str | None, first: str | None
) -> None:
    returncode, lines = drive(code, replace(SETTINGS, instance_count=1, **threshold), *arguments)
    if error is None:  # within both: one mini-batch and its one item failed, and the job completes
        assert returncode == 0
        assert lines[-1].endswith("2 done, 1 failed, 1 retried; 5 item(s) in, 1 failed, 8 row(s) out")
    else:
        assert returncode == 1
        assert lines[-1].startswith(f"error: {error}")
        assert lines[-1].endswith(f"the parallel job stops; the first: mini-batch {first}")


def test_an_entry_script_whose_init_fails_fails_the_job_in_one_line(code: Path) -> None:
    process = subprocess.run(
        [sys.executable, str(PARALLEL_SCRIPT), "--settings", SETTINGS.encoded(), "--input-data", str(code.parent)],
        cwd=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 1  # init() requires --state, which the driver is not given here
    assert process.stdout.splitlines()[-1] == (
        "error: the entry script score.py's import or init() failed in a worker process; its traceback is above"
    )
    assert "the following arguments are required: --state" in process.stderr


def test_stopping_the_step_leaves_no_worker(code: Path) -> None:
    process = driver(code, replace(SETTINGS, timeout=600), "--slow-on", "part")
    deadline = time.monotonic() + 30
    while len(state(code, "run")) < 1 and time.monotonic() < deadline:  # a worker is inside run()
        time.sleep(0.02)
    workers = [int(name.removeprefix("init-")) for name in state(code, "init")]
    assert workers
    os.killpg(process.pid, signal.SIGTERM)  # as the step host stops a step: its whole process group
    process.communicate(timeout=30)
    assert process.returncode != 0
    assert not (code.parent / "rows.txt").exists() or not (code.parent / "rows.txt").read_text()
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_an_mltable_input_needs_microsofts_mltable_package(code: Path) -> None:
    try:
        import mltable  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("mltable is installed here: its mini-batches are cut, not refused")
    (code.parent / "files" / "MLTable").write_text("paths:\n  - pattern: ./*.csv\n")
    returncode, lines = drive(code, replace(SETTINGS, input_type="mltable"))
    assert returncode == 1
    assert lines[-1] == (
        "error: an mltable input_data is read with Microsoft's mltable package, which is not installed here: "
        "pip install 'aml-pipeline-kit[mltable]'"
    )


# --- building and checking ------------------------------------------------------------------------------------------


def test_settings_azure_ml_refuses_are_refused_in_one_line() -> None:
    assert ParallelSettings.decoded(SETTINGS.encoded()) == SETTINGS
    assert replace(SETTINGS, max_concurrency_per_instance=0).problems() == [
        "max_concurrency_per_instance is 0; it must be at least 1"
    ]
    assert replace(SETTINGS, error_threshold=-2).problems() == [
        "error_threshold is -2; it must be -1 (ignore every failure) or more"
    ]
    assert replace(SETTINGS, partition_keys=("Store",)).problems() == [
        "partition_keys need an mltable input_data, not a uri_folder"
    ]


def test_a_job_file_with_a_parallel_node_is_built_and_checked(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(FIXTURES, tmp_path / "pipelines"))
    job = folder / "parallel.yml"
    report = check_job_file(job, {}, None)
    assert not report.findings, report.findings

    script = folder / "parallel" / "score" / "score.py"
    script.write_text(script.read_text().replace("def init()", "def start()").replace("--drop-on", "--drop"))
    findings = [finding.message for finding in check_job_file(job, {}, None).findings]
    assert findings == ["score.py defines no init(), which Azure ML's parallel job calls"]
    script.write_text(script.read_text().replace("def start()", "def init()"))
    findings = [finding.message for finding in check_job_file(job, {}, None).findings]
    assert findings == ["--drop-on is passed by the command but score.py's parser has no such option"]

    job.write_text(job.read_text().replace("    logging_level: INFO\n", "    partition_keys: [file]\n"))
    findings = [finding.message for finding in check_job_file(job, {}, None).findings]
    assert findings == ["node 'score': partition_keys need an mltable input_data, not a uri_folder"]


def test_the_entry_call_is_read_back_from_the_command() -> None:
    command = f"python {PARALLEL_SCRIPT} --settings {SETTINGS.encoded()} --input-data x -- --scale 10"
    assert entry_call(command) == (SETTINGS, "python score.py --scale 10")
    assert entry_call("python score.py --settings x") is None
