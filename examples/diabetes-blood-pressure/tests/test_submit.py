"""What `make submit` would send to Azure ML, offline (`aml-pipeline-kit submit --dry-run`): the resources of aml/ and
the training job on the registered data asset, serialised as azure-ai-ml sends them. How the engine signs in, brings
the workspace in line and streams the job is tested in its own suite, against Azure ML simulated at the HTTP level."""

import yaml

from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.azure_ml import submit_dry_run
from aml_pipeline_kit.local_runs import local_job
from aml_pipeline_kit.project import Project

JOB_HEADING = "then submit this pipeline job to experiment "


def test_the_dry_run_lists_the_resources_of_aml_and_the_components_of_the_graph(project: Project) -> None:
    resources, _, _ = submit_dry_run(project).partition(JOB_HEADING)
    lines = resources.splitlines()
    assert lines[0] == "would create, or update to match its spec, each of:"
    kinds = [line.split()[0] for line in lines[1:]]
    assert kinds.count("AmlCompute") == kinds.count("Environment") == kinds.count("Data") == 1
    assert f"  AmlCompute {project.compute['name']}\n" in resources
    assert f"  Data {project.data_asset['name']} version {project.data_asset['version']}\n" in resources
    folders = {step.code for step in plan_from_job(local_job(project, "training")).steps}  # one component each
    assert kinds.count("CommandComponent") == len(folders)


def test_the_training_job_reads_the_data_asset_and_registers_the_model_under_config_yml_s_name(
    project: Project,
) -> None:
    printed = submit_dry_run(project, {"model_type": "random_forest", "n_estimators": 50})
    heading, _, document = printed.partition(JOB_HEADING)[2].partition("\n")
    assert heading == f"{project.setting('azure', 'experiment_name')!r}:"
    job = yaml.safe_load(document)
    assert job["type"] == "pipeline"
    assert job["experiment_name"] == project.setting("azure", "experiment_name")
    assert job["settings"]["default_compute"] == f"azureml:{project.compute['name']}"
    assert job["inputs"]["input_data"] == {"type": "uri_file", "path": project.data_asset_uri}
    assert job["inputs"]["registered_model_name"] == project.setting("azure", "registered_model_name")
    assert (job["inputs"]["model_type"], job["inputs"]["n_estimators"]) == ("random_forest", 50)
    assert set(job["jobs"]) == {"data_prep", "train", "evaluate", "register"}
    register = job["jobs"]["register"]["inputs"]
    assert register["model_name"]["path"] == "${{parent.inputs.registered_model_name}}"
