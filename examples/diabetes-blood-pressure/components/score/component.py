"""The batch-scoring step, an Azure ML parallel job built with ``azure.ai.ml.parallel_run_function``.

Azure ML splits the rows (a folder of CSV and Parquet files, an MLTable, or a single file) into mini-batches and runs
score.py's ``init()`` once per worker and ``run()`` once per mini-batch on ``instance_count`` nodes with
``max_concurrency_per_instance`` workers each; the local runner runs the same entry script the same way on this
machine's cores. config.yml's ``scoring.parallel`` holds the settings (pipeline.py checks them).
"""

from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output
from azure.ai.ml.entities import Parallel
from azure.ai.ml.parallel import RunFunction, parallel_run_function

HERE = Path(__file__).parent


def batch_scoring(settings: dict[str, Any], data_type: str) -> Parallel:
    """The scoring step for rows of ``data_type`` (``uri_folder``, ``mltable`` or ``uri_file``) with ``settings``."""
    return parallel_run_function(
        name="diabetes_blood_pressure_score",
        display_name="Score rows",
        description="Check each mini-batch of rows against the model's features, predict them, write their CSV.",
        inputs={
            "model": Input(type="mlflow_model", description="A model saved by the train step."),
            "data": Input(type=data_type, description="The rows to score; the target column may be absent."),
            "id_column": Input(type="string", description="Column identifying each row, or null: base64-encoded JSON."),
        },
        outputs={"predictions": Output(type="uri_folder", description="One predictions CSV per mini-batch.")},
        # Azure ML fills in ${{inputs.*}} and ${{outputs.*}} when the step starts.
        input_data="${{inputs.data}}",
        mini_batch_size=str(settings["mini_batch_size"]),
        instance_count=settings["instance_count"],
        max_concurrency_per_instance=settings["max_concurrency_per_instance"],
        error_threshold=settings["error_threshold"],
        mini_batch_error_threshold=settings["mini_batch_error_threshold"],
        retry_settings={"max_retries": settings["retries"], "timeout": settings["timeout"]},
        logging_level="INFO",
        task=RunFunction(
            code=str(HERE),
            entry_script="score.py",
            program_arguments=(
                "--model ${{inputs.model}} --id-column ${{inputs.id_column}} --predictions ${{outputs.predictions}}"
            ),  # the runner adds options of its own
            environment="azureml:diabetes-blood-pressure-env@latest",
        ),
        is_deterministic=True,
    )
