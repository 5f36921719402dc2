"""The local runner, step host and check against hostile values, tampered outputs, interruptions and concurrent
runs, on the example project and on job files.

Each case once failed (issue 11): a column name run as shell code, a placeholder filled in inside a value,
an override that crashed a step, a tampered model reused, a run that spun forever, an interrupted run left
RUNNING with its host orphaned, two first runs at once crashing on the store's migration.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from conftest import TrainedProject
from projects import (
    BILLION_LAUGHS,
    ENV,
    PROG,
    cli,
    command,
    copy_example,
    latest_run,
    load_project,
    no_step_host_left,
    start_cli,
    step_hosts,
)

from aml_pipeline_kit import aml_graph, local_runner, local_runs, plan, plan_cache
from aml_pipeline_kit import cli as engine_cli
from aml_pipeline_kit.local_runs import checked_graphs, local_job, run_pipeline_locally
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.step_host import StepHost
from aml_pipeline_kit.testing.hostile import HOSTILE_COLUMN_NAMES

INJECTED = "injected"  # the file a header tries to create through a shell


@pytest.fixture(scope="module")
def project(example: Path) -> Project:
    """The example, loaded in this process."""
    return load_project(example)


# --- the quoting rule (check's command-quoting, and the runner's refusal) -------------------------------------

# command -> the string inputs it leaves open to the shell; input x is a string, n a number, e/w enums
QUOTING = {
    "single-quoted": ("python s.py --x '${{inputs.x}}'", []),
    "bare": ("python s.py --x ${{inputs.x}}", ["x"]),
    "double-quoted": ('python s.py --x "${{inputs.x}}"', ["x"]),
    "single quotes inside double quotes": ("python s.py --x \"'${{inputs.x}}'\"", ["x"]),
    "escaped quotes": ("python s.py --x \\'${{inputs.x}}\\'", ["x"]),
    "inside a longer quoted word": ("python s.py '--x=${{inputs.x}}'", []),
    "quoted after an equals sign": ("python s.py --x='${{inputs.x}}'", []),
    "in an optional block": ("python s.py $[[--x '${{inputs.x}}']]", []),
    "quoted once, bare once": ("python s.py --x '${{inputs.x}}' --y ${{inputs.x}}", ["x"]),
    "a number": ("python s.py --n ${{inputs.n}}", []),
    "an enum of plain words": ("python s.py --e ${{inputs.e}}", []),
    "an enum with a space": ("python s.py --w ${{inputs.w}}", ["w"]),
    "a file, bare": ("python s.py --p ${{inputs.p}}", ["p"]),
    "a file, single-quoted": ("python s.py --p '${{inputs.p}}'", []),
    "a model folder inside double quotes": ('python s.py --m "${{inputs.m}}"', ["m"]),
    "an output, bare (Azure ML names its folder)": ("python s.py --o ${{outputs.o}}", []),
}


@pytest.mark.parametrize(("command", "open_to_the_shell"), QUOTING.values(), ids=QUOTING.keys())
def test_the_quoting_rule(command: str, open_to_the_shell: list[str]) -> None:
    inputs = {
        "x": plan.StepInput("string", plan.Binding()),
        "n": plan.StepInput("number", plan.Binding()),
        "e": plan.StepInput("string", plan.Binding(), enum=("ridge", "random_forest")),
        "w": plan.StepInput("string", plan.Binding(), enum=("a b", "c")),
        "p": plan.StepInput("uri_file", plan.Binding()),
        "m": plan.StepInput("mlflow_model", plan.Binding()),
    }
    assert plan.unquoted_inputs(command, inputs) == open_to_the_shell


# (type, declaration, value) -> why the input refuses it (None: accepted)
VALUES = {
    "below the minimum": ("number", {"minimum": 0.01}, 0, "0 is below the minimum 0.01"),
    "above the maximum": ("integer", {"maximum": 4294967295.0}, 2**32, "4294967296 is above the maximum 4294967295"),
    "infinite": ("number", {}, float("inf"), "inf is not a finite number"),
    "not a number": ("number", {}, "nan", "'nan' is not a finite number"),
    "a fraction for an integer": ("integer", {}, 1.5, "1.5 is not a whole number"),
    "a boolean for an integer": ("integer", {}, True, "True is not a whole number"),
    "outside the enum": ("string", {"enum": ("ridge",)}, "svm", "'svm' is not one of ridge"),
    "a single quote": (
        "string",
        {},
        "it's",
        '"it\'s" holds a single quote or a NUL, which no quoting on a command line carries safely',
    ),
    "a default, as text": ("integer", {"minimum": 1.0}, "100", None),
    "flags and shell code in text": ("string", {}, "--help $(id) `id` ; a b", None),
    "a binding in text": (
        "string",
        {},
        "${{outputs.decision}}",
        "'${{outputs.decision}}' holds ${{...}}, which Azure ML reads as a binding to an input or output, not as text",
    ),
    "a file name with a single quote": (
        "uri_file",
        {},
        "/data/it's.csv",
        'its file name "it\'s.csv" holds a single quote, which no quoting on a command line carries safely',
    ),
    "a file name with a control character": (
        "uri_file",
        {},
        "/data/a\nb.csv",
        "its file name 'a\\nb.csv' holds a control character, which Azure Storage refuses in a blob name",
    ),
    "a file name with a binding": (
        "uri_file",
        {},
        "/data/${{inputs.x}}.csv",
        "its file name '${{inputs.x}}.csv' holds ${{...}}, which Azure ML reads as a binding to an input or output",
    ),
    "a quote in a folder above the file (only the name reaches Azure ML)": ("uri_file", {}, "/o'neil/a b.csv", None),
}


@pytest.mark.parametrize(("kind", "declared", "value", "problem"), VALUES.values(), ids=VALUES.keys())
def test_values_an_input_refuses(kind: str, declared: dict, value: object, problem: str | None) -> None:
    assert plan.StepInput(kind, plan.Binding(), **declared).problem(value) == problem


def test_a_value_is_never_searched_for_placeholders() -> None:
    """A column named ``${{outputs.out}}`` once became the output folder's path."""
    command = "python s.py --x '${{inputs.x}}' --out ${{outputs.out}}"
    argv = local_runner.render_command(command, {"x": "${{outputs.out}} $(id)"}, {"out": Path("/o")})
    assert argv[2:] == ["--x", "${{outputs.out}} $(id)", "--out", "/o"]


# The default model (auto) trains a node per candidate, then selects: the tests of one step follow the one train node.
SINGLE_MODEL = {"model_type": "ridge"}
SINGLE_MODEL_RUN = ("-p", "model_type=ridge")

# -p NAME=VALUE -> the one line that refuses the run before anything starts
OVERRIDES = {
    "-p alpha=-1": ({"alpha": -1}, "step 'train' input 'alpha' (pipeline parameter 'alpha'): -1 is below the minimum"),
    "-p random_seed=2**32": (
        {"random_seed": 2**32},
        "step 'data_prep' input 'random_seed' (pipeline parameter 'random_seed'): 4294967296 is above the maximum",
    ),
    "-p n_estimators=1.5": (
        {"n_estimators": 1.5},
        "step 'train' input 'n_estimators' (pipeline parameter 'n_estimators'): 1.5 is not a whole number",
    ),
    "-p test_size=0": (
        {"test_size": 0},
        "step 'data_prep' input 'test_size' (pipeline parameter 'test_size'): 0 is below the minimum 0.01",
    ),
    "-p learning_rate=inf": (
        {"learning_rate": float("inf")},
        "step 'train' input 'learning_rate' (pipeline parameter 'learning_rate'): inf is not a finite number",
    ),
    "-p registered_model_name=it's": (
        {"registered_model_name": "it's"},
        "step 'register' input 'model_name' (pipeline parameter 'registered_model_name'): \"it's\" holds a single",
    ),
}


@pytest.mark.parametrize(("overrides", "message"), OVERRIDES.values(), ids=OVERRIDES.keys())
def test_a_value_no_step_can_take_is_refused_before_the_run(project: Project, overrides: dict, message: str) -> None:
    built = aml_graph.plan_from_job(local_job(project, "training", {**SINGLE_MODEL, **overrides}))
    assert local_runner.plan_problem(built).startswith(message)


# --- column names from a hostile header, through the shell as Azure ML runs a command ----------------------------

ARGV_DUMP = "import json, sys\nopen(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))\n"
STEP_OF = """
import json
from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.local_runs import local_job
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.step_host import StepHost
plan = plan_from_job(local_job(Project.load(), "training"))
step = plan.step("data_prep")
values = {
    name: plan.inputs.get(spec.binding.pipeline_input) if spec.binding.pipeline_input else spec.default
    for name, spec in step.inputs.items()
}
print(json.dumps({"command": step.command, "values": values}, default=str))
"""
PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


def filled_as_azure_ml_does(command: str, inputs: dict, outputs: dict) -> str:
    """Azure ML's substitution: each placeholder replaced by the value's text, an option whose input is unset
    dropped; then the command goes to a shell."""

    def optional(block: re.Match[str]) -> str:
        names = re.findall(r"\$\{\{inputs\.(\w+)\}\}", block[1])
        return block[1] if all(inputs.get(name) is not None for name in names) else ""

    def value(match: re.Match[str]) -> str:
        return str((inputs if match[1] == "inputs" else outputs)[match[2]])

    return PLACEHOLDER.sub(value, OPTIONAL_BLOCK.sub(optional, command))


def with_data(project: Path, names: list[str], rows: list[list[object]], target: str) -> Path:
    """``project`` trained on a CSV of its own under data/ (aml/data.yml names it), whose columns are ``names`` and
    ``target``; config.yml's features the names, as the template's hooks write a CSV's columns into it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[*names, target], *rows])
    (project / "data" / "houses.csv").write_text(buffer.getvalue())
    data_spec = project / "aml" / "data.yml"
    data_spec.write_text(data_spec.read_text().replace('"../data/diabetes.csv"', '"../data/houses.csv"'))
    config = project / "config.yml"
    text = config.read_text().replace('target_column: "BloodPressure"', f"target_column: {json.dumps(target)}")
    features = f"features:\n  numeric: {json.dumps(names, ensure_ascii=False)}\n  categorical: []\n"
    config.write_text(text[: text.index("features:\n")] + features)
    return project


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> tuple[Path, list[str]]:
    """The example on a CSV whose header holds shell code, placeholders and flags; and those names."""
    folder = tmp_path_factory.mktemp("hostile")
    names = [*HOSTILE_COLUMN_NAMES, f"x'; touch {folder / INJECTED}; echo '"]
    rows = [[(i * (3 + j)) % (5 + j) for j in range(len(names))] + [100 + 3 * i + i % 7] for i in range(60)]
    return with_data(copy_example(folder / "out" / "houses", empty_store), names, rows, "price"), names


def test_column_names_reach_the_step_whole_through_a_shell(
    hostile_project: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Filled in the way Azure ML fills a command and run by bash: such a header once ran ``touch``."""
    project, names = hostile_project
    found = subprocess.run(
        [sys.executable, "-c", STEP_OF],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    step = json.loads(found.stdout)
    dump, argv_file = tmp_path / "dump.py", tmp_path / "argv.json"
    dump.write_text(ARGV_DUMP)
    command = filled_as_azure_ml_does(step["command"], step["values"], {"prepped_data": tmp_path / "out"})
    command = command.replace("python prep.py", f"{sys.executable} {dump} {argv_file}", 1)
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)

    assert not (project.parent.parent / INJECTED).exists()
    parser = step_parser(project / "components" / "data_prep")
    arguments = parser.parse_args(json.loads(argv_file.read_text()))
    assert (arguments.target_column, arguments.numeric_columns) == ("price", names)


def step_parser(folder: Path) -> object:
    """data_prep's argument parser, imported as ``python prep.py`` would import it: beside its script, the code its
    additional_includes bring (components/common/)."""
    folders = [str(folder), str(folder.parent / "common")]
    sys.path[:0] = folders
    try:
        return importlib.import_module("prep").build_parser()
    finally:
        for added in folders:
            sys.path.remove(added)
        for module in ("prep", "csv_rules", "argument_types"):
            sys.modules.pop(module, None)


@pytest.mark.slow  # runs the pipeline
def test_a_project_with_hostile_column_names_runs_locally(
    hostile_project: tuple[Path, list[str]], step_host: StepHost
) -> None:
    project, names = hostile_project
    run_pipeline_locally(load_project(project), {}, check=True, host=step_host)
    prepped = Path(latest_run(project)["steps"][0]["outputs"]["prepped_data"])
    assert json.loads((prepped / "features.json").read_text())["numeric"] == names
    assert not (project.parent.parent / INJECTED).exists()


# --- data paths through the shell, as Azure ML fills a command ----------------------------------------------------

# Where Azure ML mounts a job's data: a data input's path ends with its file's name, which comes from the user.
MOUNTS = "/mnt/azureml/cr/j/0f1e2d/cap/data-capability/wd"
# file name -> what it tries; a name cannot hold a slash, so what it would create lands in the shell's folder
HOSTILE_FILE_NAMES = {
    "a space": f"house prices {INJECTED}.csv",
    "a semicolon": f"x.csv; touch {INJECTED}",
    "command substitution": f"$(touch {INJECTED}).csv",
    "backticks": f"`touch {INJECTED}`.csv",
    "double quotes and a variable": f'say "{INJECTED}" $HOME.csv',
    "globs, a pipe and a redirection": f"*.csv | tee {INJECTED} > {INJECTED} & ~",
}


@pytest.fixture(scope="module")
def serialised_commands(project: Project) -> list[tuple[str, Any]]:
    """Every command and parallel node of the example's graphs, as azure-ai-ml serialises them for Azure ML: (graph
    and node, the node as a step, its pipeline's input values)."""
    commands = []
    for job_name, job in checked_graphs(project).items():  # every pipeline the project registers
        document = aml_graph.serialised(job)
        for name, node in aml_graph.check_nodes(job).items():
            step = aml_graph.step_from_node(name, node, project.root)
            commands.append((f"{job_name}.{name}", step, document["inputs"]))
    return commands


def azure_ml_command(step: Any, file_name: str) -> tuple[str, str]:
    """The command line Azure ML fills in and hands to a shell, and the name its data inputs' mount paths end in: a
    command node's own, where every data input is held to end in ``file_name``; for a parallel node, its entry
    script with its program_arguments, which may name no file input: Azure ML's driver takes the input_data, and
    mounts a folder input (the model) under the input's own name."""
    parallel_runner = f"python {shlex.quote(str(aml_graph.PARALLEL_SCRIPT))} "
    if not step.command.startswith(parallel_runner):
        return step.command, file_name
    arguments = step.command.split(" -- ", 1)[1]
    files = [name for name, spec in step.inputs.items() if spec.type == "uri_file" and f"inputs.{name}}}" in arguments]
    assert not files, f"{step.name}'s program_arguments name the file input {files[0]}"
    return f"python entry_script.py {arguments}", ""


def azure_ml_values(step: Any, pipeline_inputs: dict, file_name: str) -> tuple[dict, dict]:
    """What Azure ML fills in for a step's inputs and outputs: every data input mounted under a path ending in
    ``file_name``, every other input its bound value or its default."""
    inputs = {}
    for name, spec in step.inputs.items():
        if spec.is_path:
            inputs[name] = f"{MOUNTS}/INPUT_{name}/{file_name}"
        elif spec.binding.pipeline_input:
            inputs[name] = pipeline_inputs.get(spec.binding.pipeline_input)
        else:
            inputs[name] = spec.default if spec.binding.value is None else spec.binding.value
    return inputs, {name: f"{MOUNTS}/{name}" for name in step.outputs}


@pytest.mark.parametrize("file_name", HOSTILE_FILE_NAMES.values(), ids=HOSTILE_FILE_NAMES.keys())
def test_data_paths_reach_every_step_whole_through_a_shell(
    serialised_commands: list[tuple[str, Any]], tmp_path: Path, file_name: str
) -> None:
    """Each serialised command filled in as Azure ML fills it and run by bash, the script replaced by printf: every
    step gets the argv the local runner gives it, paths whole, and nothing the names hold runs. A CSV named with
    a space once split its path in two; one with a semicolon ran a command."""
    assert {name.split(".")[0] for name, _, _ in serialised_commands} == {"training", "tuning", "monitoring", "scoring"}
    for name, step, pipeline_inputs in serialised_commands:
        command, mounted_name = azure_ml_command(step, file_name)
        inputs, outputs = azure_ml_values(step, pipeline_inputs, mounted_name)
        filled = filled_as_azure_ml_does(command, inputs, outputs)
        assert filled.startswith("python "), name
        printed = subprocess.run(
            ["bash", "-c", filled.replace("python ", "printf '%s\\0' ", 1)],
            cwd=tmp_path,
            capture_output=True,
            check=True,
        )
        argv = printed.stdout.decode().split("\0")[:-1]
        assert argv == local_runner.render_command(command, inputs, outputs)[1:], name
        assert not list(tmp_path.iterdir()), f"{name} ran what a file name holds"


# --- reuse verified by content -----------------------------------------------------------------------------------

# what is done to an output of the first run -> the step that must run again, and the reason it gives. Done one
# after another in one project, downstream step first: each tampers with an output whose step every run since
# reused, so it is still the output the first run recorded for that step.
TAMPERING = {
    "a file added to the report": ("evaluate/report/stray.txt", "add", "evaluate", "stray.txt was added"),
    "a file of the model deleted": ("train/model/MLmodel", "delete", "train", "MLmodel is gone"),
    "a byte of the prepared data changed": ("data_prep/prepped_data/train.parquet", "flip", "data_prep", "changed"),
}


@pytest.mark.slow  # runs the pipeline
def test_a_step_whose_recorded_outputs_changed_is_run_again(
    tmp_path: Path, empty_store: Path, step_host: StepHost, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = load_project(copy_example(tmp_path / "project", empty_store))
    project = loaded.root
    run_pipeline_locally(loaded, SINGLE_MODEL, host=step_host)
    first = project / "runs" / latest_run(project)["run_id"]
    for case, (path, action, step, reason) in TAMPERING.items():
        target = first / path
        if action == "delete":
            target.unlink()
        elif action == "flip":
            content = bytearray(target.read_bytes())
            content[len(content) // 2] ^= 0xFF
            target.write_bytes(bytes(content))
        else:
            target.write_text("mine\n")

        capsys.readouterr()
        run_pipeline_locally(loaded, SINGLE_MODEL, host=step_host)
        again = capsys.readouterr()

        statuses = {entry["name"]: entry["status"] for entry in latest_run(project)["steps"]}
        assert statuses[step] == "completed", case
        assert f"{step}: not reused, its earlier outputs changed since" in again.out, f"{case}: {again.out}"
        assert reason in again.out, f"{case}: {again.out}"


# --- pipeline job files that once went wrong: a step's code, its outputs, YAML --------------------------------------

IMAGE = {"image": "python:3.11-slim"}


def job_file(folder: Path, nodes: dict, text: str = "") -> Path:
    """A pipeline job of command nodes (``nodes``: each one's component, inline or a spec file's name, and its
    bindings), written to ``folder/job.yml``; ``text`` goes first in the file."""
    jobs = {
        name: {
            "type": "command",
            "component": spec if isinstance(spec, str) else {"type": "command", "environment": IMAGE, **spec},
            **bindings,
        }
        for name, (spec, bindings) in nodes.items()
    }
    folder.mkdir(parents=True, exist_ok=True)
    document = {"type": "pipeline", "settings": {"default_compute": "azureml:cpu-cluster"}, "jobs": jobs}
    (folder / "job.yml").write_text(text + yaml.safe_dump(document, sort_keys=False))
    return folder / "job.yml"


def code_with(project: Path, link: str | None = None, to: str = "") -> dict:
    """A component whose code is a folder of the project holding ``link``, a link to ``to``."""
    code = project / "code"
    (code / "step.py").parent.mkdir(parents=True, exist_ok=True)
    (code / "step.py").write_text("print('ran')\n")
    if link:
        (code / link).symlink_to(to)
    return {"code": str(code), "command": "python step.py"}


def writes_nothing(output: str, kind: str = "uri_folder") -> dict:
    """A component given the place of its output ``output`` that writes nothing there, and exits 0."""
    return {"outputs": {output: {"type": kind}}, "command": f"echo ${{{{outputs.{output}}}}}"}


def reads(node: str, output: str) -> tuple[dict, dict]:
    component = {"inputs": {"data": {"type": "uri_folder"}}, "command": "ls ${{inputs.data}}"}
    return component, {"inputs": {"data": f"${{{{parent.jobs.{node}.outputs.{output}}}}}"}}


def loop_include(project: Path) -> Path:
    (project / "shared").symlink_to("shared")  # a link to itself
    return job_file(project, {"a": ({**code_with(project), "additional_includes": ["shared"]}, {})})


def bomb_in_spec(project: Path) -> Path:
    spec = {"type": "command", "environment": IMAGE, "command": "true"}
    (project / "spec.yml").write_text(f"tags:\n{BILLION_LAUGHS}" + yaml.safe_dump(spec))
    return job_file(project, {"a": ("./spec.yml", {})})


# what the project's folder holds -> the exit code of `run --local --job` on it, and the line that says why
JOB_FILES = {
    "code: .. holding the local runs, not ignored": (
        # The step fails if its snapshot holds runs/: once 14 GB copied in 107 s, then exit 70.
        lambda project: job_file(project / "jobs", {"a": ({"code": "..", "command": "test ! -e runs"}, {})}),
        0,
        None,
    ),
    "an additional include that is a link loop": (
        loop_include,
        1,
        r".*\[aml-validate\] jobs\.a\.component\.additional_includes: Symlink loop from .*shared.*",
    ),
    "code: /etc": (
        lambda project: job_file(project, {"a": ({"code": "/etc", "command": "true"}, {})}),
        2,
        r"error: step 'a': its code reaches /etc, a system folder \(configuration and secrets, .*",
    ),
    "a link into /etc in the code": (
        lambda project: job_file(project, {"a": (code_with(project, "passwords", "/etc/shadow"), {})}),
        2,
        r"error: step 'a': its code reaches .*/code/passwords, a link into /etc, a system folder .*",
    ),
    "a link to nothing in the code": (
        lambda project: job_file(project, {"a": (code_with(project, "gone.py", "nowhere.py"), {})}),
        2,
        r"error: step 'a': its code reaches .*/code/gone\.py, a link to .*/nowhere\.py, which does not exist: .*",
    ),
    "a uri_file output never written": (
        lambda project: job_file(project, {"a": (writes_nothing("note", "uri_file"), {})}),
        1,
        r"error: step 'a' failed: it exited 0 but did not write its output 'note' \(uri_file\) .*",
    ),
    "a folder output left empty, which a step reads": (
        lambda project: job_file(project, {"a": (writes_nothing("data"), {}), "b": reads("a", "data")}),
        1,
        r"error: step 'a' failed: it exited 0 but left its output 'data' \(uri_folder\) empty, which b reads: .*",
    ),
    "a folder output left empty, which nothing reads": (
        lambda project: job_file(project, {"a": (writes_nothing("data"), {})}),
        0,
        None,
    ),
    "an alias bomb in the job file": (
        lambda project: job_file(project, {"a": ({"command": "true"}, {})}, f"tags:\n{BILLION_LAUGHS}"),
        2,
        r"error: .*/job\.yml: its aliases expand to more than .* values .*",
    ),
    "an alias bomb in a component spec the job file names": (
        bomb_in_spec,
        2,
        r"error: .*/spec\.yml: its aliases expand to more than .* values .*",
    ),
}


@pytest.mark.slow  # runs pipelines, of shell steps
@pytest.mark.parametrize(("prepare", "exit_code", "line"), JOB_FILES.values(), ids=JOB_FILES.keys())
def test_a_job_file_runs_or_is_refused_in_one_line(
    tmp_path: Path,
    empty_store: Path,
    capfd: pytest.CaptureFixture[str],
    prepare: Callable[[Path], Path],
    exit_code: int,
    line: str | None,
) -> None:
    project = copy_example(tmp_path / "project", empty_store)
    result = command(capfd, project, "run", "--local", "--job", str(prepare(project)))
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if line is None:
        assert result.stderr == ""
    else:
        assert any(re.fullmatch(line, text) for text in result.stderr.splitlines()), result.stderr
        assert not list(project.glob("runs/.reuse/*.json"))  # nothing that failed is kept for reuse
    assert not list(project.glob("runs/**/shadow"))


# --- records that cannot brick a project ---------------------------------------------------------------------------


@contextmanager
def replaced(path: Path, text: str) -> Iterator[Path]:
    original = path.read_text()
    path.write_text(text)
    try:
        yield path
    finally:
        path.write_text(original)


def reuse_entry_emptied(project: Path) -> AbstractContextManager[Path]:
    """data_prep's reuse entry as ``{}``: every run once exited 70 on it (KeyError: 'outputs')."""
    entry = next(path for path in project.glob("runs/.reuse/*.json") if "/data_prep/" in path.read_text())
    return replaced(entry, "{}")


@contextmanager
def newest_run_cut_short(project: Path) -> Iterator[Path]:
    """The newest run's run.json cut short, as a crash mid-write left it once: `score` exited 70 on it."""
    summary = project / "runs" / "29991231-235959-ffffff" / "run.json"  # newer than any run
    summary.parent.mkdir()
    text = json.dumps(latest_run(project), indent=2)
    summary.write_text(text[: len(text) // 2])
    try:
        yield summary
    finally:
        shutil.rmtree(summary.parent)


def check_verdict_cut_short(project: Path) -> AbstractContextManager[Path]:
    verdict = plan_cache.PlanCache(project, project / "runs" / ".plans")._path(plan_cache.VERDICT)
    return replaced(verdict, verdict.read_text()[:100])


# a record of the trained project made corrupt -> the command that reads it, and what it calls such a record
CORRUPT_RECORDS = {
    "a reuse entry that is {}": (reuse_entry_emptied, ["run", "--local"], "reuse entry"),
    "the newest run.json cut short": (newest_run_cut_short, ["score", "--local"], "run summary"),
    "check's verdict cut short": (check_verdict_cut_short, ["check"], "cached plan"),
}


@pytest.mark.slow  # runs pipelines of the trained example
@pytest.mark.parametrize(("corrupt", "argv", "what"), CORRUPT_RECORDS.values(), ids=CORRUPT_RECORDS.keys())
def test_a_corrupt_record_is_ignored_in_one_line(
    trained_example: TrainedProject,
    capfd: pytest.CaptureFixture[str],
    corrupt: Callable[[Path], AbstractContextManager[Path]],
    argv: list[str],
    what: str,
) -> None:
    with corrupt(trained_example.root) as record:
        result = command(capfd, trained_example.root, *argv)
    assert result.returncode == 0, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert re.fullmatch(rf"warning: {re.escape(str(record))} is not a valid {what} \(.+\): ignored\n", result.stderr)


@contextmanager
def moved_aside(path: Path) -> Iterator[None]:
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        aside.rename(path)


@pytest.mark.slow  # runs the pipeline of the trained example
def test_steps_are_reused_even_when_the_mlflow_store_no_longer_holds_their_runs(
    trained_example: TrainedProject, capfd: pytest.CaptureFixture[str]
) -> None:
    """Once exit 2 ("Run with id=... not found"), when the store moved (MLFLOW_TRACKING_URI, local.tracking_uri) or
    was deleted while runs/ stayed: the steps' outputs are what their reuse is verified by, not their MLflow runs."""
    with moved_aside(trained_example.root / "mlruns.db"):
        result = command(capfd, trained_example.root, "run", "--local")
        assert (result.returncode, result.stderr) == (0, "")
        statuses = {entry["name"]: entry["status"] for entry in latest_run(trained_example.root)["steps"]}
        assert statuses.pop("register") == "completed"  # the registry it decides from is a new, empty one
        assert set(statuses.values()) == {"reused"}
        client = mlflow.MlflowClient(f"sqlite:///{trained_example.root / 'mlruns.db'}")
        runs = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
        assert sorted(run.info.run_name for run in runs if run.data.tags.get("reused_from")) == sorted(statuses)


LIBRARIES = {"azure.ai.ml", "mlflow", "pandas", "sklearn"}  # seconds of imports that a run with nothing to do spares


def statuses_of_a_run(root: Path, step_host: StepHost) -> dict[str, str]:
    run_pipeline_locally(load_project(root), {}, host=step_host)
    return {entry["name"]: entry["status"] for entry in latest_run(root)["steps"]}


@pytest.mark.slow  # runs the pipeline of the trained example
def test_nothing_changed_runs_nothing_and_the_register_step_runs_when_the_registry_moved(
    trained_example: TrainedProject, step_host: StepHost
) -> None:
    """Issue 23: the register step ran every time (its decision depends on the registry), so a run with nothing
    changed started the step host and paid MLflow's imports. Now it is reused while the registry holds what it held
    when the step ended, and runs again when another run registered a version or a version was deleted."""
    root = trained_example.root
    # What the tests before left (the registry, the plan cache's entries for this command): decided from once more.
    assert cli(root, "run", "--local").returncode == 0
    requests = [root / "runs" / name for name in ("sample-request.json", "sample-request-mlflow.json")]
    written = [path.stat().st_mtime_ns for path in requests]
    nothing_changed = cli(root, "run", "--local", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert nothing_changed.returncode == 0, nothing_changed.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in nothing_changed.stderr.splitlines() if "|" in line}
    assert "aml_pipeline_kit.local_runner" in imported and not imported & LIBRARIES
    assert [path.stat().st_mtime_ns for path in requests] == written  # the sample requests are the same model's
    assert f"sample requests: {requests[0]} (online endpoint), {requests[1]} (serve)\n" in nothing_changed.stdout
    assert {step["status"] for step in latest_run(root)["steps"]} == {"reused"}
    assert not latest_run(root)["mlflow_run_id"]  # no step host was asked to track a run

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlruns.db'}")
    [model] = client.search_registered_models()
    another = client.create_model_version(model.name, trained_example.model.as_uri(), tags={"test_rmse": "0.5"})
    assert statuses_of_a_run(root, step_host) == {
        **dict.fromkeys(["data_prep", "train", "evaluate"], "reused"),
        "register": "completed",
    }
    assert statuses_of_a_run(root, step_host)["register"] == "reused"
    client.delete_model_version(model.name, another.version)
    assert statuses_of_a_run(root, step_host)["register"] == "completed"


WRITTEN_ON_A_FULL_DISK = """
import resource, sys
from pathlib import Path
from aml_pipeline_kit.local_runner import RunResult, StepResult, write_summary
steps = [StepResult(f"step_{number}", "completed", 1.0, {}) for number in range(100)]
resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))  # as a full disk: no file past 2 KiB
write_summary(RunResult("second", Path(sys.argv[1]), "completed", steps))
"""


def test_a_record_the_disk_has_no_room_for_leaves_the_last_one_whole(tmp_path: Path) -> None:
    """run.json was written in place: a crash or a full disk mid-write left half of one, and `score` exited 70."""
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "first", "status": "completed"}))
    before = (tmp_path / "run.json").read_text()
    written = subprocess.run(
        [sys.executable, "-c", WRITTEN_ON_A_FULL_DISK, str(tmp_path)],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert written.returncode != 0
    assert written.stderr.splitlines()[-1] == "OSError: [Errno 27] File too large"
    assert (tmp_path / "run.json").read_text() == before
    assert [path.name for path in tmp_path.iterdir()] == ["run.json"]


# --- options refused up front ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_max_parallel_is_refused_in_one_line(example: Path, value: str) -> None:
    result = cli(example, "run", "--local", "--max-parallel", value, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{PROG} run: error: argument --max-parallel: {value!r} is invalid: must be a whole number >= 1 "
        f"(see {PROG} run --help)"
    ]


# --- SIGINT and SIGTERM ------------------------------------------------------------------------------------------

FIRST_LINE_OF_MAIN = "    args = build_parser().parse_args(argv)\n"


def running_until_stopped(tmp_path: Path, store: Path, step: str, script: str) -> tuple[Path, subprocess.Popen[str]]:
    """A run of a project copy whose ``script``'s main sleeps first, once ``step`` has started (its log exists):
    the step runs until it is stopped."""
    project = copy_example(tmp_path / "project", store)
    path = project / "components" / step / script
    text = path.read_text().replace(FIRST_LINE_OF_MAIN, FIRST_LINE_OF_MAIN + "    __import__('time').sleep(120)\n", 1)
    path.write_text(text)
    running = start_cli(project, "run", "--local", *SINGLE_MODEL_RUN)
    deadline = time.monotonic() + 120
    while not list(project.glob(f"runs/2*/{step}/step.log")) and running.poll() is None:
        assert time.monotonic() < deadline, f"{step} never started"
        time.sleep(0.02)
    return project, running


@pytest.mark.slow  # runs the pipeline
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"])
def test_an_interrupted_run_stops_every_step_and_says_so_everywhere(
    tmp_path: Path, empty_store: Path, signum: int, exit_code: int
) -> None:
    project, running = running_until_stopped(tmp_path, empty_store, "train", "train.py")
    time.sleep(0.5)  # the step is inside its sleep

    started = time.monotonic()
    running.send_signal(signum)
    _, stderr = running.communicate(timeout=60)

    assert time.monotonic() - started < 10
    assert running.returncode == exit_code
    summary = latest_run(project)
    run_dir = project / "runs" / summary["run_id"]
    assert stderr.splitlines() == [
        f"interrupted by {signal.Signals(signum).name}: run {summary['run_id']} marked killed in "
        f"{run_dir / 'run.json'} and MLflow; stopped train and removed their outputs"
    ]
    assert summary["status"] == "killed"
    assert summary["interrupted_by"] == signal.Signals(signum).name
    steps = {entry["name"]: entry["status"] for entry in summary["steps"]}
    assert steps == {"data_prep": "completed", "train": "killed"}
    assert not (run_dir / "train" / "model").exists()
    assert (run_dir / "train" / "step.log").is_file()
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert parent.info.status == "KILLED"
    statuses = {child.info.run_name: child.info.status for child in children}
    assert statuses == {"data_prep": "FINISHED", "train": "KILLED"}
    assert no_step_host_left(project)


@pytest.mark.slow  # runs the pipeline
def test_a_run_interrupted_while_the_step_host_still_loads_ends_in_one_line(tmp_path: Path, empty_store: Path) -> None:
    """The host starts data_prep once MLflow, its store and pandas are in, and loads the other steps' imports
    (scikit-learn, skops, matplotlib: seconds) while data_prep runs: the signal lands then."""
    project, running = running_until_stopped(tmp_path, empty_store, "data_prep", "prep.py")
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=60)

    assert running.returncode == 130
    summary = latest_run(project)
    assert stderr.splitlines() == [
        f"interrupted by SIGINT: run {summary['run_id']} marked killed in "
        f"{project / 'runs' / summary['run_id'] / 'run.json'} and MLflow; stopped data_prep and removed their outputs"
    ]
    assert [(entry["name"], entry["status"]) for entry in summary["steps"]] == [("data_prep", "killed")]
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    assert client.get_run(summary["mlflow_run_id"]).info.status == "KILLED"
    assert no_step_host_left(project)


def test_an_interrupted_check_ends_in_one_line(tmp_path: Path, empty_store: Path) -> None:
    # A project of its own: in the shared one, another test's run may have cached check's verdict, and then this
    # run skips check and completes before the signal.
    project = copy_example(tmp_path / "project", empty_store)
    running = start_cli(project, "run", "--local")
    # The step host starts just before check, which takes seconds (azure-ai-ml): a fixed wait raced a fast machine.
    deadline = time.monotonic() + 60
    while not step_hosts(project) and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == 130
    assert stderr.splitlines() == ["interrupted by SIGINT"]
    assert no_step_host_left(project)


def test_an_interruption_a_library_swallows_still_stops_the_run(
    tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """azure-ai-ml catches BaseException in places (its component loaders, dsl): a Ctrl-C landing there during check
    was lost, and the run went on to the end with the signals ignored."""
    project = copy_example(tmp_path / "project", empty_store)
    monkeypatch.chdir(project)
    real_check = local_runs.check_report

    def check_swallowing_a_signal(project: Project, cache: Any) -> Any:
        try:  # as azure-ai-ml's `except BaseException: # pylint: disable=W0718` blocks do
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises within it
        except BaseException:
            pass
        return real_check(project, cache)

    monkeypatch.setattr(local_runs, "check_report", check_swallowing_a_signal)
    assert engine_cli.main(["run", "--local"]) == 130
    assert capsys.readouterr().err.splitlines() == ["interrupted by SIGINT"]
    assert not list(project.glob("runs/2*"))
    assert no_step_host_left(project)


# --- two runs at once --------------------------------------------------------------------------------------------


@pytest.mark.slow  # runs the pipeline
def test_two_first_runs_at_once_in_a_fresh_project_both_complete(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "project")
    assert not (project / "mlruns.db").exists()
    # One model: the race is over the store's creation at the start; the three candidates would add only work.
    runs = [start_cli(project, "run", "--local", *SINGLE_MODEL_RUN) for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [stderr for _, stderr in results]
    assert all("Traceback" not in stderr for _, stderr in results)
    summaries = [json.loads(path.read_text()) for path in project.glob("runs/2*/run.json")]
    assert len({summary["run_id"] for summary in summaries}) == 2
    assert {summary["status"] for summary in summaries} == {"completed"}
    assert step_hosts(project) == []
