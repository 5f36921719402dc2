"""``check`` passes on the project as it stands: every graph it registers, every spec and script. The engine's own
suite breaks projects in each way ``check`` knows and sees each named, once, for every project."""

import re

from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.local_runs import check_report, checked_graphs
from aml_pipeline_kit.project import Project

CLEAN_SUMMARY = re.compile(r"^check: (\d+) components, \d+ bindings, (\d+) scripts, \d+ packages — no findings$")


def test_the_unmodified_project_passes(scratch: Project) -> None:
    report = check_report(scratch)  # its verdict is cached under the runs folder: a copy's
    assert report.findings == [], report.text()
    summary = CLEAN_SUMMARY.match(report.summary())
    assert summary, report.summary()
    graphs = checked_graphs(scratch)
    assert set(graphs) == {"training", "tuning", "scoring", "monitoring"}
    # One folder per component; a sweep's best-trial step runs the engine's sweep.py, in no component folder.
    folders = {step.code for job in graphs.values() for step in plan_from_job(job).steps if step.code is not None}
    assert int(summary[1]) == int(summary[2]) == len(folders)  # and each runs a Python script
