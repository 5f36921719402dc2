"""``check`` passes on the project as it stands and prints one line. The template this project came from breaks a
copy of it in each way ``check`` knows and sees each named (its tests/test_check_cases.py), once, for every project."""

import re

import pytest

from aml_pipeline_kit.aml_graph import plan_from_job

from {{ cookiecutter.__package_name }} import cli, local_runs, pipeline
from {{ cookiecutter.__package_name }}.settings import Settings

CLEAN_SUMMARY = re.compile(r"^check: (\d+) components, \d+ bindings, (\d+) scripts, \d+ packages — no findings$")


def test_the_unmodified_project_passes(project: Settings) -> None:
    report = local_runs.check_report(project)
    assert report.findings == [], report.text()
    summary = CLEAN_SUMMARY.match(report.summary())
    assert summary, report.summary()
    graphs = pipeline.checked_graphs(project).values()  # training, tuning and monitoring
    # One folder per component; a sweep's best-trial step runs the kit's sweep.py, in no component folder.
    folders = {step.code for job in graphs for step in plan_from_job(job).steps if step.code is not None}
    assert int(summary[1]) == int(summary[2]) == len(folders)  # and each runs a Python script


def test_the_check_command_prints_one_summary_line(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["check"]) == 0
    output = capsys.readouterr().out.strip().splitlines()
    assert len(output) == 1 and CLEAN_SUMMARY.match(output[0]), output
