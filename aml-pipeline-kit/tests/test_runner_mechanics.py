"""The local runner's mechanics on hand-made plans: inputs, command lines, order, reuse keys."""

from __future__ import annotations

import datetime
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from aml_pipeline_kit import local_runner, plan, registry, snapshot, tracking

COMMAND = (
    "python train.py --data ${{inputs.data}} --alpha ${{inputs.alpha}} "
    "$[[--depth ${{inputs.depth}}]] --model ${{outputs.model}}"
)


def make_step(name: str, code: Path, **inputs: Any) -> Any:
    return plan.Step(name, name, COMMAND, code, inputs, outputs={"model": "uri_folder"})


def train_step(code: Path) -> Any:
    return make_step(
        "train",
        code,
        data=plan.StepInput("uri_folder", plan.Binding(node="prep", output="out")),
        alpha=plan.StepInput("number", plan.Binding(pipeline_input="alpha"), default="1.0"),
        depth=plan.StepInput("integer", plan.Binding(pipeline_input="depth"), optional=True),
    )


def test_inputs_resolve_from_upstream_outputs_pipeline_inputs_and_defaults(tmp_path: Path) -> None:
    produced = {("prep", "out"): tmp_path / "prep" / "out"}
    values = local_runner.resolve_inputs(train_step(tmp_path), {"alpha": 0.5}, produced)
    assert values == {"data": tmp_path / "prep" / "out", "alpha": 0.5, "depth": None}
    assert local_runner.resolve_inputs(train_step(tmp_path), {}, produced)["alpha"] == "1.0"


def test_a_required_input_without_value_or_default_is_an_error(tmp_path: Path) -> None:
    step = make_step("train", tmp_path, data=plan.StepInput("uri_folder", plan.Binding(pipeline_input="missing")))
    with pytest.raises(plan.PlanError, match="step 'train' input 'data' has no value and no default"):
        local_runner.resolve_inputs(step, {}, {})


def test_command_fills_placeholders_and_drops_unset_optional_blocks(tmp_path: Path) -> None:
    outputs = {"model": tmp_path / "my model"}
    argv = local_runner.render_command(COMMAND, {"data": "/in", "alpha": 0.5, "depth": None}, outputs)
    assert argv == [sys.executable, "train.py", "--data", "/in", "--alpha", "0.5", "--model", str(outputs["model"])]
    argv = local_runner.render_command(COMMAND, {"data": "/in", "alpha": 0.5, "depth": 3}, outputs)
    assert argv[6:8] == ["--depth", "3"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("python x.py --a ${{inputs.nope}}", "does not declare"),
        ("python x.py --o ${{outputs.nope}}", "does not declare"),
        ("python x.py --d ${{inputs.depth}}", "outside a \\$\\[\\[...\\]\\] block"),
    ],
)
def test_command_errors_name_the_placeholder(command: str, message: str) -> None:
    with pytest.raises(plan.PlanError, match=message):
        local_runner.render_command(command, {"depth": None}, {})


def test_steps_are_ordered_by_their_inputs_and_cycles_are_refused(tmp_path: Path) -> None:
    prep = make_step("prep", tmp_path)
    train = train_step(tmp_path)
    assert [step.name for step in plan.in_dependency_order([train, prep])] == ["prep", "train"]
    looped = make_step("prep", tmp_path, data=plan.StepInput("uri_folder", plan.Binding(node="train", output="model")))
    with pytest.raises(plan.PlanError, match="cycle"):
        plan.in_dependency_order([train, looped])
    with pytest.raises(plan.PlanError, match="unknown step 'prep'"):
        plan.in_dependency_order([train])


def test_step_key_follows_code_parameters_and_upstream(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('v1')\n")
    step = train_step(tmp_path)
    values = {"data": tmp_path, "alpha": 0.5, "depth": None}

    def key(values: dict[str, Any], upstream: str) -> str:
        return local_runner.step_key(step, values, {"prep": upstream}, snapshot.snapshot_files(step))

    first = key(values, "upstream-1")
    assert key(values, "upstream-1") == first
    assert key({**values, "alpha": 0.6}, "upstream-1") != first
    assert key(values, "upstream-2") != first
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"noise")
    assert key(values, "upstream-1") == first
    (tmp_path / "train.py").write_text("print('v2')\n")
    assert key(values, "upstream-1") != first


def test_content_digest_sees_file_contents_not_paths(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("x,y\n1,2\n")
    second.write_text("x,y\n1,2\n")
    assert local_runner.content_digest(first) != local_runner.content_digest(tmp_path)
    second.write_text("x,y\n1,3\n")
    assert local_runner.content_digest(first) != local_runner.content_digest(second)


def test_reuse_index_forgets_entries_whose_outputs_are_gone(tmp_path: Path) -> None:
    index = local_runner.ReuseIndex(tmp_path)
    output = tmp_path / "run-1" / "train" / "model"
    output.mkdir(parents=True)
    index.record("key", "run-1", {"model": output}, "mlflow-1")
    entry, changed = index.lookup("key")
    assert changed is None
    assert entry == {
        "run_id": "run-1",
        "outputs": {"model": str(output)},
        "manifests": {"model": {}},
        "mlflow_run_id": "mlflow-1",
    }
    output.rmdir()
    assert index.lookup("key") == (None, f"{output} is gone")
    assert index.lookup("other") == (None, None)


def test_the_schema_head_read_from_the_migration_scripts_is_alembics(tmp_path: Path) -> None:
    from mlflow.store.db import utils

    versions = Path(utils.__file__).parents[1] / "db_migrations" / "versions"
    assert tracking.schema_head(versions) == utils._get_latest_schema_revision()
    for name, revision, down_revision in [("a", "'a1'", "None"), ("b", "'b1'", "'a1'"), ("c", "'c1'", "'a1'")]:
        (tmp_path / f"{name}.py").write_text(f"revision = {revision}\ndown_revision = {down_revision}\n")
    assert tracking.schema_head(tmp_path) is None  # two heads: alembic decides (and MLflow refuses)
    (tmp_path / "c.py").write_text("revision = 'c1'\ndown_revision = ('a1', 'b1')\n")
    assert tracking.schema_head(tmp_path) is None  # a merge: left to alembic
    (tmp_path / "c.py").write_text("revision = 'c1'\ndown_revision = 'b1'\n")
    assert tracking.schema_head(tmp_path) == "c1"


def test_a_reused_step_carries_its_earlier_runs_parameters_and_metrics(tmp_path: Path, empty_store: Path) -> None:
    shutil.copy2(empty_store, tmp_path / "mlruns.db")
    recorder = tracking.LocalTracking(f"sqlite:///{tmp_path / 'mlruns.db'}", "reuse", tmp_path / "artifacts")
    inputs = {f"input_{number:03}": number for number in range(150)}  # more than one batch
    pipeline = recorder.start_pipeline("first", {**inputs, "unset": None})
    step, _ = recorder.start_step("train")
    params = {f"p{number:03}": f"value {number}" for number in range(120)}
    metrics = {f"m{number:03}": number / 7 for number in range(30)}
    for name, value in params.items():
        recorder.client.log_param(step, name, value)
    for name, value in metrics.items():
        recorder.client.log_metric(step, name, value)
    recorder.end_step(step, "FINISHED")
    recorder.end_pipeline("completed")
    assert recorder.client.get_run(pipeline).data.params == {name: str(value) for name, value in inputs.items()}

    recorder.start_pipeline("second", {})
    recorder.record_reused_step("train", step)
    [reused] = [
        run
        for run in recorder.client.search_runs([recorder.experiment_id], "tags.reused_from != ''")
        if run.data.tags.get("reused_from") == step
    ]
    assert (reused.data.params, reused.data.metrics, reused.info.status) == (params, metrics, "FINISHED")


def test_the_registry_state_follows_one_models_rows_and_a_missing_store_is_empty(
    tmp_path: Path, empty_store: Path
) -> None:
    """What the register step is reused by: read without MLflow, it must still see every change MLflow makes to the
    model it decides from, and read a store that does not exist yet as the empty one the first run creates."""
    missing = tmp_path / "not yet" / "mlruns.db"
    nothing = registry.registry_state(f"sqlite:///{missing}", "model")
    assert nothing is not None and not missing.parent.exists()
    uri = f"sqlite:///{shutil.copy2(empty_store, tmp_path / 'mlruns.db')}"
    assert registry.registry_state(uri, "model") == nothing
    client = MlflowClient(uri, uri)
    states = [nothing]
    for change in (
        lambda: client.create_registered_model("model"),
        lambda: client.create_model_version("model", tmp_path.as_uri()),
        lambda: client.set_model_version_tag("model", "1", "test_rmse", "10.5"),
        lambda: client.delete_model_version("model", "1"),
    ):
        change()
        states.append(registry.registry_state(uri, "model"))
    assert len(set(states)) == len(states)
    client.create_registered_model("another model")
    assert registry.registry_state(uri, "model") == states[-1]
    for unreadable in ("sqlite:///relative.db", "http://localhost:5000", "file:///mlruns"):
        assert registry.registry_state(unreadable, "model") is None  # such a step runs every time


class OneSecond(datetime.datetime):
    """The clock within one second: every reading a microsecond later than the one before."""

    readings = 0

    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> OneSecond:
        cls.readings += 1
        return cls(2026, 1, 1, 12, 0, 0, cls.readings, tzinfo=tz)


def test_runs_started_within_one_second_sort_as_they_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest run is the one whose id sorts last (the latest model, `score`'s default): ids of one second once took
    a random suffix, and sorted at random."""
    monkeypatch.setattr(local_runner, "datetime", OneSecond)
    run_ids = [local_runner.new_run_id() for _ in range(20)]
    assert sorted(run_ids) == run_ids
    assert len(set(run_ids)) == len(run_ids)
