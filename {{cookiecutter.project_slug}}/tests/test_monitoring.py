"""Monitoring: the drift statistics on the project's own CSV, and the monitoring graph run on this machine with the
project's own model (`make monitor`): no drift on a held-back slice of the data, clear drift on a shifted copy. The
graph's steps are pinned in test_aml_graph.py; its job and schedule on Azure ML are the engine's, tested there."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_script

from aml_pipeline_kit.local_runner import RunResult, StepFailed
from aml_pipeline_kit.local_runs import monitor_locally
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.step_host import StepHost

from {{ cookiecutter.__package_name }}.pipeline import MONITORING_THRESHOLDS, load_components

drift = load_script("monitor", "drift")
UNSEEN = "a category training never saw"


@pytest.fixture(scope="module")
def rows(project: Project) -> pd.DataFrame:
    return pd.read_csv(project.local_data_path)


@pytest.fixture(scope="module")
def features(project: Project) -> dict[str, list[str]]:
    return {kind: project.setting("features", kind) for kind in ("numeric", "categorical")}


def thresholds(project: Project) -> object:
    return drift.Thresholds(**project.setting("monitoring", "thresholds"))


def held_back(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random fifth of the rows, and the rest: the same distribution."""
    slice_ = rows.sample(frac=0.2, random_state=7)
    return rows.drop(index=slice_.index), slice_


def shifted(rows: pd.DataFrame, features: dict[str, list[str]]) -> tuple[pd.DataFrame, list[str]]:
    """A copy with its first two numeric features moved by a standard deviation and a half, and a third of its first
    categorical feature's values replaced by a category training never saw; the names of what was changed."""
    copy = rows.copy()
    changed = [name for name in features["numeric"] if copy[name].std() > 0][:2]
    for name in changed:
        copy[name] = copy[name] + 1.5 * copy[name].std()
    if features["categorical"]:
        name = features["categorical"][0]
        copy[name] = copy[name].astype(object)
        copy.loc[copy.sample(frac=1 / 3, random_state=3).index, name] = UNSEEN
        changed.append(name)
    return copy, changed


def column_drifts(reference: pd.DataFrame, batch: pd.DataFrame, features: dict, limits: object) -> dict[str, object]:
    found = {name: drift.numeric_drift(name, reference[name], batch[name], limits) for name in features["numeric"]}
    for name in features["categorical"]:
        found[name] = drift.categorical_drift(name, reference[name], batch[name], limits)
    return found


def test_the_psi_is_zero_for_the_same_shares_and_follows_its_formula() -> None:
    assert drift.population_stability_index(np.array([10, 30, 60]), np.array([20, 60, 120])) == pytest.approx(0.0)
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert drift.population_stability_index(np.array([50, 50]), np.array([90, 10])) == pytest.approx(expected)


def test_a_held_back_slice_of_the_data_does_not_drift(project: Project, rows: pd.DataFrame, features: dict) -> None:
    reference, slice_ = held_back(rows)
    found = column_drifts(reference, slice_, features, thresholds(project))
    # A PSI alone can come close to its threshold on a slice this small (10 bins, a few hundred rows): the test's
    # p-value is what keeps chance from being called drift.
    assert [name for name, column in found.items() if column.drifted] == []
    assert not any(column.missing_rate_increased or column.unseen_too_many for column in found.values())


def test_a_shifted_copy_drifts_in_exactly_the_shifted_features(
    project: Project, rows: pd.DataFrame, features: dict
) -> None:
    reference, slice_ = held_back(rows)
    batch, changed = shifted(slice_, features)
    found = column_drifts(reference, batch, features, thresholds(project))
    assert [name for name, column in found.items() if column.drifted] == changed
    for name in changed[:2]:
        assert found[name].test == "ks" and found[name].p_value < 1e-6
    for name in features["categorical"][:1]:
        assert found[name].test == "chi2" and found[name].js_distance > 0
        assert found[name].unseen_too_many and found[name].unseen_values == (UNSEEN,)
        assert found[name].unseen_rate == pytest.approx(1 / 3, abs=0.01)


def test_missing_values_are_left_out_of_the_distribution_and_reported_on_their_own(project: Project) -> None:
    reference = pd.Series(np.arange(1000.0))
    batch = reference.sample(frac=0.4, random_state=1).reset_index(drop=True)
    batch[: len(batch) // 2] = np.nan  # half the batch missing: its other half still comes from the same values
    column = drift.numeric_drift("x", reference, batch, thresholds(project))
    assert column.missing_rate_reference == 0.0 and column.missing_rate_batch == 0.5
    assert column.missing_rate_increased
    assert not column.drifted


def test_every_threshold_is_a_pipeline_input_the_component_and_its_script_take(project: Project) -> None:
    component = load_components(project, "monitor")["monitor"]
    assert set(project.setting("monitoring", "thresholds")) == set(MONITORING_THRESHOLDS)
    assert set(MONITORING_THRESHOLDS) <= set(component.inputs)
    monitor = load_script("monitor", "monitor")
    flags = set(monitor.build_parser()._option_string_actions)
    assert {"--" + name.replace("_", "-") for name in MONITORING_THRESHOLDS} <= flags


# --- on this machine ------------------------------------------------------------------------------------------------


def batch_file(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "batch.csv", index=False)
    return folder / "batch.csv"


def report_of(result: RunResult) -> dict:
    return json.loads((result.outputs["report"] / "report.json").read_text())


def test_a_held_back_slice_passes_monitoring_with_the_quality_beside_the_test_metrics(
    completed_run: tuple[Project, RunResult], step_host: StepHost, rows: pd.DataFrame, tmp_path: Path
) -> None:
    project, training = completed_run
    batch = batch_file(held_back(rows)[1], tmp_path)
    result = monitor_locally(project, training.outputs["model"], batch, host=step_host)
    assert [step.status for step in result.steps if step.name == "monitor"] == ["completed"]
    report = report_of(result)
    assert report["alerts"] == [] and report["drifted_features"] == []
    assert report["rows"]["batch"] == len(held_back(rows)[1])
    test_metrics = json.loads((training.outputs["report"] / "metrics.json").read_text())
    assert report["quality"]["test_rmse"] == pytest.approx(test_metrics["rmse"])
    assert report["quality"]["rmse"] > 0 and "r2" in report["quality"]
    assert (result.outputs["report"] / "drift.png").stat().st_size > 0


def test_a_shifted_copy_without_its_target_fails_monitoring_naming_the_shifted_features(
    completed_run: tuple[Project, RunResult],
    step_host: StepHost,
    rows: pd.DataFrame,
    features: dict,
    tmp_path: Path,
) -> None:
    project, training = completed_run
    batch, changed = shifted(held_back(rows)[1], features)
    batch = batch.drop(columns=[project.setting("target_column")])
    with pytest.raises(StepFailed) as failure:
        monitor_locally(project, training.outputs["model"], batch_file(batch, tmp_path), host=step_host)
    assert failure.value.step == "monitor"
    log = failure.value.log.read_text()
    (error,) = [line for line in log.splitlines() if line.startswith("error:")]
    psi, p_value = (project.setting("monitoring", "thresholds", key) for key in ("psi", "p_value"))
    named = ", ".join(repr(name) for name in changed)
    assert error.startswith(f"error: monitoring thresholds crossed: drift in {named} (PSI >= {psi} and p < {p_value})")
    if features["categorical"]:
        assert f"unseen categories above 5% of the rows in {features['categorical'][0]!r}" in error
    assert "Traceback" not in log and "batch rows with a target" not in log  # no target, no quality table
