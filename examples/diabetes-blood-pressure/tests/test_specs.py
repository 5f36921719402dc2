"""Every Azure ML spec loads and validates with azure-ai-ml itself, offline."""

import io
import re
import tomllib
from pathlib import Path

import yaml
from azure.ai.ml import load_compute, load_data, load_environment
from azure.ai.ml.entities import AmlCompute, CommandComponent, Data, Environment, PipelineJob
from conftest import PROJECT_ROOT

from aml_pipeline_kit.local_runs import local_job
from aml_pipeline_kit.project import Project

from diabetes_blood_pressure.parameters import encoded
from diabetes_blood_pressure.pipeline import load_components

COMPONENTS = ("data_prep", "train", "select", "evaluate", "register", "monitor")  # command steps; score: parallel
AZURE_ML_DOC = PROJECT_ROOT / "docs" / "azure-ml.md"  # its known-good versions

SCHEMA_URL = re.compile(r"^\$schema: https://azuremlschemas\.azureedge\.net/latest/\w+\.schema\.json$", re.MULTILINE)


def dumped(job: PipelineJob) -> dict:
    buffer = io.StringIO()
    job.dump(buffer)
    return yaml.safe_load(buffer.getvalue())


def test_aml_specs_load_with_official_schemas(project: Project) -> None:
    aml = PROJECT_ROOT / "aml"
    compute = load_compute(aml / "compute.yml")
    assert isinstance(compute, AmlCompute)
    assert compute.name == project.compute["name"]
    assert compute.min_instances <= compute.max_instances
    environment = load_environment(aml / "environment.yml")
    assert isinstance(environment, Environment)
    assert environment.conda_file["dependencies"][0].startswith("python=3.11")
    data = load_data(aml / "data.yml")
    assert isinstance(data, Data)
    assert data.type == "uri_file"
    assert project.local_data_path.is_file()
    for spec in [*aml.glob("*.yml"), *PROJECT_ROOT.glob("components/*/*.yml")]:
        if spec.name != "conda.yml":
            assert SCHEMA_URL.search(spec.read_text()), f"{spec} lacks an official $schema line"


def test_components_load_and_reference_the_environment(project: Project) -> None:
    environment = load_environment(PROJECT_ROOT / "aml" / "environment.yml")
    components = load_components(project, *COMPONENTS)
    folders = {path.name for path in (PROJECT_ROOT / "components").iterdir() if path.is_dir()}
    assert folders == {*COMPONENTS, "score", "common"}
    for name, component in components.items():
        assert isinstance(component, CommandComponent), name
        # azure-ai-ml drops the "azureml:" prefix of a reference given in Python, keeps it from YAML
        assert str(component.environment).removeprefix("azureml:") == f"{environment.name}@latest", name
        # register's result depends on the registry, monitor's on the rows behind a path: never reused
        assert component.is_deterministic == (name not in {"register", "monitor"}), name
    assert set(components["data_prep"].inputs) == {
        "input_data",
        "target_column",
        "numeric_columns",
        "categorical_columns",
        "test_size",
        "cv_folds",
        "random_seed",
    }
    assert components["data_prep"].inputs["numeric_columns"].optional
    assert components["data_prep"].inputs["input_data"].type == "uri_file"
    assert components["data_prep"].outputs["prepped_data"].type == "uri_folder"
    assert components["train"].outputs["model"].type == "mlflow_model"


def test_placeholders_survive_rendering(project: Project) -> None:
    for name, component in load_components(project, *COMPONENTS).items():
        for input_name in component.inputs:
            assert "${{" + f"inputs.{input_name}" + "}}" in component.command, (name, input_name)
        for output_name in component.outputs:
            assert "${{" + f"outputs.{output_name}" + "}}" in component.command, (name, output_name)
    assert "$[[--max-depth ${{inputs.max_depth}}]]" in load_components(project, "train")["train"].command


def test_the_training_graph_builds_validates_and_wires_the_steps(
    project: Project, single_model: dict[str, str]
) -> None:
    job = local_job(project, "training", single_model)
    assert job._validate().passed
    document = dumped(job)
    assert document["settings"]["default_compute"] == f"azureml:{project.compute['name']}"
    assert set(document["jobs"]) == {"data_prep", "train", "evaluate", "register"}
    jobs = document["jobs"]
    assert jobs["data_prep"]["inputs"]["input_data"]["path"] == "${{parent.inputs.input_data}}"
    assert jobs["train"]["inputs"]["prepped_data"]["path"] == "${{parent.jobs.data_prep.outputs.prepped_data}}"
    assert jobs["evaluate"]["inputs"]["model"]["path"] == "${{parent.jobs.train.outputs.model}}"
    assert jobs["evaluate"]["inputs"]["prepped_data"]["path"] == "${{parent.jobs.data_prep.outputs.prepped_data}}"
    assert jobs["register"]["inputs"]["report"]["path"] == "${{parent.jobs.evaluate.outputs.report}}"
    assert jobs["register"]["inputs"]["model_name"]["path"] == "${{parent.inputs.registered_model_name}}"
    assert document["outputs"] == {
        "model": {"type": "mlflow_model"},
        "report": {"type": "uri_folder"},
        "decision": {"type": "uri_folder"},
    }
    assert document["inputs"]["target_column"] == encoded(project.setting("target_column"))
    assert document["inputs"]["model_type"] == single_model["model_type"]


def test_environment_pins_match_the_local_install() -> None:
    conda = yaml.safe_load((PROJECT_ROOT / "aml" / "conda.yml").read_text())
    pip_pins = dict(line.split("==") for line in conda["dependencies"][-1]["pip"])
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    local_pins = dict(line.split("==") for line in project["project"]["dependencies"] if "==" in line)
    assert pip_pins["mlflow-skinny"] == local_pins["mlflow"] == "3.15.0"  # azureml-mlflow needs <=3.15.0
    for package in ("scikit-learn", "skops", "pandas", "pyarrow", "numpy", "matplotlib"):
        assert pip_pins[package] == local_pins[package], package


DATED_IMAGE = re.compile(r"^mcr\.microsoft\.com/azureml/[\w.-]+:\d{8}\.v\d+$")  # Microsoft's builds: 20250701.v1


def test_azure_ml_runs_on_one_dated_build_of_microsofts_image() -> None:
    """`latest` would change what runs on Azure ML without a change here; docs/azure-ml.md's table names the build."""
    steps = yaml.safe_load((PROJECT_ROOT / "aml" / "environment.yml").read_text())["image"]
    deployment = yaml.safe_load((PROJECT_ROOT / "aml" / "deployment.yml").read_text())["environment"]["image"]
    assert DATED_IMAGE.match(steps), steps
    assert deployment == steps
    assert f"| `{steps}` |" in AZURE_ML_DOC.read_text(encoding="utf-8")


KNOWN_GOOD_ROW = re.compile(r"^\| `([A-Za-z0-9_.-]+)==([^`]+)` \|", re.MULTILINE)


def conda_pip_pins(path: Path) -> dict[str, str]:
    dependencies = yaml.safe_load(path.read_text())["dependencies"]
    pins = next(item["pip"] for item in dependencies if isinstance(item, dict))
    return dict(pin.split("==") for pin in pins)


def test_the_known_good_versions_are_the_pins_of_azure_and_of_pyproject() -> None:
    """docs/azure-ml.md's table names every pin of what runs on Azure ML (steps, deployment, model), and the same
    versions as pyproject.toml wherever it pins the package (mlflow there is mlflow-skinny on Azure ML)."""
    table = dict(KNOWN_GOOD_ROW.findall(AZURE_ML_DOC.read_text(encoding="utf-8")))
    train = (PROJECT_ROOT / "components" / "train" / "training.py").read_text()
    declared = train.split("SERVING_REQUIREMENTS = ", 1)[1].split("\n", 1)[0]
    serving = dict(pin.split("==") for pin in re.findall(r'"([\w-]+==[\w.]+)"', declared))
    steps = conda_pip_pins(PROJECT_ROOT / "aml" / "conda.yml")
    deployment = conda_pip_pins(PROJECT_ROOT / "online" / "conda.yml")
    for package in (steps.keys() & deployment.keys()) | (serving.keys() & deployment.keys()):
        assert steps.get(package, serving.get(package)) == deployment[package], package
    azure = {**steps, **deployment, **serving}
    assert table == azure
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = dict(line.split("==") for line in project if "==" in line)
    for package, version in azure.items():
        local = pinned.get("mlflow" if package == "mlflow-skinny" else package)
        assert local in (None, version), f"{package}: {version} on Azure ML, {local} in pyproject.toml"
    assert {"scikit-learn", "pandas", "numpy", "skops", "mlflow"} <= pinned.keys()
