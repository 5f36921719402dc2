"""The engine's command line on every error path, in the trained example: one line on stderr, a non-zero exit,
never a traceback. What the user can correct exits 2, a failed step 1, a bug 70 with its traceback in a file the line
names. Each case once ended in a traceback (issue 11)."""

from __future__ import annotations

import json
import re
import resource
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest
import yaml
from conftest import TrainedProject
from projects import BILLION_LAUGHS, LEFT_BY_RUNS, PROG, cli, command

from aml_pipeline_kit.cli import main

# Runs the example's pipeline first: the full suite's, not `make test-fast`'s.
pytestmark = pytest.mark.slow


@pytest.fixture
def trained(trained_example: TrainedProject) -> Path:
    """The example with a completed local run, so that there is a model to score and serve."""
    return trained_example.root


@contextmanager
def moved_away(path: Path) -> Iterator[None]:
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        yield
    finally:
        aside.rename(path)


@contextmanager
def written(path: Path, text: str) -> Iterator[None]:
    original = path.read_text() if path.exists() else None
    path.write_text(text)
    try:
        yield
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_text(original)


@contextmanager
def as_a_file(path: Path) -> Iterator[None]:
    """``path``, a folder, replaced by a file for the duration: writing under it fails."""
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    path.write_text("not a folder\n")
    try:
        yield
    finally:
        path.unlink()
        aside.rename(path)


def with_flow_style_model(config: Path) -> AbstractContextManager[object]:
    """config.yml with its ``model:`` section on one line, in flow style, which tune cannot write its result into;
    one trial a sweep, should a sweep start."""
    text = config.read_text()
    section = text[text.index("model:\n") : text.index("\n\n", text.index("model:\n"))]
    flow = "model: " + json.dumps(yaml.safe_load(section)["model"])
    return written(config, text.replace(section, flow).replace("max_total_trials: 20", "max_total_trials: 1"))


@contextmanager
def appended(path: Path, text: str) -> Iterator[None]:
    with written(path, path.read_text() + text):
        yield


@contextmanager
def locked(database: Path) -> Iterator[None]:
    """The SQLite database held by another process's write transaction for the duration."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        connection.close()


@contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """No file may grow past ``size`` bytes, in this process and those it starts (``ulimit -f``): a write past it
    fails as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


Condition = Callable[[Path], AbstractContextManager[object]]  # what a case does to the project while it runs
HEADER_ONLY = "Pregnancies,Glucose,BloodPressure,SkinThickness,BMI,DiabetesPedigreeFunction,Age,Diabetic\n"

# name -> (what to do to the trained project for the duration, argv, exit code, pattern of the one stderr line)
CASES: dict[str, tuple[Condition, list[str], int, str]] = {
    "score a CSV with a header and no rows": (
        lambda project: written(project / "header-only.csv", HEADER_ONLY),
        ["score", "--local", "--data", "header-only.csv"],
        1,
        r"error: step 'score' failed: .*header-only\.csv: the file has a header but no rows to score \(its log: .*\)",
    ),
    "score --local after the project's CSV was deleted": (
        lambda project: moved_away(project / "data" / "diabetes.csv"),
        ["score", "--local"],
        2,
        r"error: the project's CSV .*diabetes\.csv is gone \(aml/data\.yml names it\): restore it, or pass --data",
    ),
    "serve on a port that does not exist": (
        lambda project: nullcontext(),
        ["serve", "--port", "99999"],
        2,
        rf"{PROG} serve: error: argument --port: '99999' is invalid: must be a whole number from 1 to 65535 .*",
    ),
    "a seed numpy cannot take": (
        lambda project: nullcontext(),
        ["run", "--local", "-p", "random_seed=4294967296"],
        2,
        r"error: step 'data_prep' input 'random_seed' \(pipeline parameter 'random_seed'\): 4294967296 is above .*",
    ),
    "a step that fails on the data": (
        lambda project: nullcontext(),
        ["run", "--local", "-p", "target_column=NoSuchColumn"],
        1,
        r"error: step 'data_prep' failed: .*target column 'NoSuchColumn' not found; columns are: .* \(its log: .*\)",
    ),
    "a parameter holding a binding": (
        lambda project: nullcontext(),
        ["submit", "--dry-run", "-p", "registered_model_name=${{outputs.decision}}"],
        2,
        rf"{PROG} submit: error: argument -p/--param: registered_model_name='\$\{{\{{outputs\.decision\}}\}}' is "
        r"invalid: \$\{\{\.\.\.\}\} is a binding to an input or output for Azure ML, never text \(see .*\)",
    ),
    "a registered model name Azure ML refuses": (
        lambda project: nullcontext(),
        ["run", "--local", "-p", "registered_model_name=a b/c"],
        2,
        rf"{PROG} run: error: argument -p/--param: registered_model_name='a b/c' is invalid: must be 1-255 "
        r"letters, digits, underscores or hyphens, starting with a letter or digit .*",
    ),
    "rows to score in a file named with a single quote": (
        lambda project: written(project / "it's.csv", HEADER_ONLY),
        ["score", "--local", "--data", "it's.csv"],
        2,
        rf"{PROG} score: error: argument --data: \"it's\.csv\" is invalid: its file name \"it's\.csv\" holds a "
        r"single quote, which no quoting on a command line carries safely; rename the file .*",
    ),
    "tune with a model section it cannot write back": (
        lambda project: with_flow_style_model(project / "config.yml"),
        ["tune", "--local"],
        2,
        r"error: .*config\.yml: tune writes the model it finds into the `model:` section, which must be a block of "
        r"`key: value` lines under `model:` \(not `model: \{\.\.\.\}` on one line\): rewrite it so, then run tune",
    ),
    "config.yml that is not YAML": (
        lambda project: written(project / "config.yml", "target_column: [unclosed\n"),
        ["check"],
        2,
        r"error: .*config\.yml: not valid YAML \(.*\)",
    ),
    "tune with bayesian sampling and an early-termination policy": (
        lambda project: written(
            project / "config.yml",
            (project / "config.yml").read_text().replace("  sampling: random", "  sampling: bayesian", 1),
        ),
        ["tune", "--azure", "--dry-run"],
        2,
        r"error: .*config\.yml: tuning\.early_termination\.policy is 'bandit' with tuning\.sampling 'bayesian'; .*",
    ),
    "runs/ is a file": (
        lambda project: as_a_file(project / "runs"),
        ["run", "--local"],
        2,
        r"error: .*/runs/\d{8}-\d{6}-\w{6}: Not a directory",
    ),
    "the MLflow store locked by another process": (
        lambda project: locked(project / "mlruns.db"),
        ["run", "--local"],
        2,
        r"error: the MLflow store sqlite:///.*/mlruns\.db failed: database is locked",
    ),
    "a full disk (no file may grow past 64 KiB)": (
        lambda project: file_size_limit(64 << 10),
        ["run", "--local", "--no-reuse"],  # a run with steps to run: one with none writes to no store
        2,
        r"error: the MLflow store sqlite:///.*/mlruns\.db failed: disk I/O error",
    ),
    "config.yml holding an alias bomb": (
        lambda project: appended(project / "config.yml", f"laughs:\n{BILLION_LAUGHS}"),
        ["check"],
        2,
        r"error: .*/config\.yml: its aliases expand to more than 1,000,000 values \(a YAML alias bomb\): .*",
    ),
    "a component spec holding an alias bomb": (
        lambda project: appended(project / "components" / "evaluate" / "evaluate.yml", f"laughs:\n{BILLION_LAUGHS}"),
        ["run", "--local"],
        2,
        r"error: .*/evaluate\.yml: its aliases expand to more than 1,000,000 values \(a YAML alias bomb\): .*",
    ),
}


@pytest.mark.parametrize(("condition", "argv", "exit_code", "line"), CASES.values(), ids=CASES.keys())
def test_every_error_ends_in_one_line(
    trained: Path, tmp_path: Path, condition: Condition, argv: list[str], exit_code: int, line: str
) -> None:
    with condition(trained):
        result = cli(trained, *argv, env={"TMPDIR": str(tmp_path)})  # where a traceback goes if runs/ cannot take it
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    found = re.fullmatch(line, lines[0])
    assert found, lines[0]
    if "log" in found.groupdict():  # a bug: its traceback is kept where the line says
        assert "Traceback (most recent call last)" in Path(found["log"]).read_text()


def test_an_unforeseen_error_ends_in_one_line_and_its_traceback_in_a_file(
    trained: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A bug, made here by a command that raises what no handler expects."""

    def bug(args: object) -> int:
        raise KeyError("outputs")

    monkeypatch.chdir(trained)
    monkeypatch.setattr("aml_pipeline_kit.cli.dispatch", bug)
    assert main(["check"]) == 70
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    found = re.fullmatch(r"error: unexpected KeyError: 'outputs' \(traceback: (?P<log>.*\.log)\)", lines[0])
    assert found, lines[0]
    assert "Traceback (most recent call last)" in Path(found["log"]).read_text()
    assert Path(found["log"]).parent == trained / "runs" / "errors"


def test_a_step_that_crashes_is_reported_by_its_last_line(
    trained: Path, tmp_path: Path, empty_store: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    shutil.copytree(trained, project, ignore=shutil.ignore_patterns(*LEFT_BY_RUNS))
    shutil.copy2(empty_store, project / "mlruns.db")
    evaluate = project / "components" / "evaluate" / "evaluate.py"
    evaluate.write_text(evaluate.read_text().replace("def main(", "def main_unused(", 1))
    result = command(capfd, project, "run", "--local", "-p", "model_type=ridge")  # one model: evaluate comes sooner
    assert result.returncode == 1
    assert re.fullmatch(
        r"error: step 'evaluate' failed: NameError: name 'main' is not defined \(its log: .*evaluate/step\.log\)",
        result.stderr.strip(),
    )
