"""One place per decision: the regressors and their hyperparameters are declared in the render's
components/train/regressors.py. Adding one to a rendered project touches two files and it trains end to end;
the template's own list of choices (cookiecutter.json) is checked against that declaration."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, bake, kit

REGRESSORS_FILE = Path("components/train/regressors.py")
TRAIN_SPEC = Path("components/train/train.yml")


def declared_regressors() -> list[str]:
    path = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / REGRESSORS_FILE
    spec = importlib.util.spec_from_file_location("template_regressors", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return list(module.REGRESSORS)


def test_the_model_choices_are_auto_first_then_the_declared_regressors() -> None:
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    assert context["model"] == ["auto", *declared_regressors()]  # the first choice is the default
    assert list(context["__prompts__"]["model"]) == ["__prompt__", *context["model"]]


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} no longer holds {old!r} once: update this test"
    path.write_text(text.replace(old, new))


def add_elastic_net(project: Path) -> None:
    """ElasticNet, with a hyperparameter no other regressor takes (l1_ratio): regressors.py and train.yml only."""
    replace_once(
        project / REGRESSORS_FILE,
        '    "max_iter": Hyperparameter(',
        '    "l1_ratio": Hyperparameter(float, 0.5, 0.0, 1.0, search=(0.05, 0.95), help="L1 share"),\n'
        '    "max_iter": Hyperparameter(',
    )
    replace_once(
        project / REGRESSORS_FILE,
        "REGRESSORS = {\n",
        'REGRESSORS = {\n    "elastic_net": Regressor("sklearn.linear_model.ElasticNet", ("alpha", "l1_ratio")),\n',
    )
    train = project / TRAIN_SPEC
    replace_once(train, "    enum: [", "    enum: [elastic_net, ")
    replace_once(
        train,
        "  max_iter:\n",
        "  l1_ratio:\n    type: number\n    default: 0.5\n    min: 0.0\n    max: 1.0\n  max_iter:\n",
    )
    replace_once(train, "  --max-iter ", "  --l1-ratio ${{inputs.l1_ratio}}\n  --max-iter ")


@pytest.mark.slow  # runs the pipeline
def test_a_regressor_added_in_two_files_is_trained_and_selected_end_to_end(tmp_path: Path) -> None:
    project = bake({}, tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    add_elastic_net(project)
    changed = subprocess.run(["git", "diff", "--name-only"], cwd=project, capture_output=True, text=True, check=True)
    assert changed.stdout.split() == [REGRESSORS_FILE.as_posix(), TRAIN_SPEC.as_posix()]

    # Every regressor side by side, the new one too, with its new hyperparameter set for the run.
    side_by_side = kit(project, "run", "--local", "-p", "model_type=auto", "-p", "l1_ratio=0.3")
    assert side_by_side.returncode == 0, side_by_side.stderr
    (run,) = [json.loads(path.read_text()) for path in project.glob("runs/2*/run.json")]
    assert {entry["name"]: entry["status"] for entry in run["steps"]}["train_elastic_net"] == "completed"
    selection = json.loads(next(project.glob("runs/*/select/selection/selection.json")).read_text())
    assert set(selection["candidates"]) == {*declared_regressors(), "elastic_net"}
    assert selection["candidates"]["elastic_net"]["hyperparameters"] == {"alpha": 1.0, "l1_ratio": 0.3}


def test_at_most_ten_questions_and_the_readme_table_says_which_are_asked() -> None:
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    variables = [name for name in context if not name.startswith("_") or not name.endswith("_")]
    asked = [name for name in variables if not name.startswith("_")]
    assert len(asked) <= 10, asked
    readme = (TEMPLATE_DIR / "README.md").read_text()
    table = readme.split("## Variables", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    listed: dict[str, str] = {}
    for row in table.splitlines()[2:]:
        names, kind = row.split("|")[1:3]
        listed.update(dict.fromkeys(re.findall(r"`(\w+)`", names), kind.strip()))
    assert set(listed) == {name for name in variables if name not in {"_copy_without_render", "_extensions"}}
    assert {name for name, kind in listed.items() if kind == "asked"} == set(asked)
