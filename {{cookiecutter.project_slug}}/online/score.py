"""Scoring script of the online deployment (aml/deployment.yml): Azure ML's inference server calls ``init()`` once,
then ``run()`` for each request.

The deployment names this script and its environment (online/conda.yml) instead of relying on no-code
deployment, whose generated environment and scoring script break with MLflow 3 models; Microsoft documents
this route in "Customize MLflow model deployments"
(https://learn.microsoft.com/azure/machine-learning/how-to-deploy-mlflow-models-online-endpoints) and runs it in
Azure/azureml-examples, cli/endpoints/online/ncd/sklearn-deployment-with-script.yaml, whose score.py reads the
same ``input_data`` body.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from azureml_inference_server_http.api.aml_response import AMLResponse

BODY_FORMAT = 'a JSON object {"input_data": {"columns": [...], "data": [[...], ...]}}'
model: Any = None


def model_folder(model_dir: Path) -> Path:
    """The MLflow model under ``AZUREML_MODEL_DIR``: Azure ML mounts the registered version's files in a folder
    named after the one it was registered from, so look for the ``MLmodel`` file rather than guess the name."""
    found = sorted(path.parent for path in model_dir.rglob("MLmodel"))
    if len(found) != 1:
        raise RuntimeError(f"expected one MLflow model (an MLmodel file) under {model_dir}, found {len(found)}")
    return found[0]


def init() -> None:
    global model
    model = mlflow.pyfunc.load_model(str(model_folder(Path(os.environ["AZUREML_MODEL_DIR"]))))


def rows_of(body: Any) -> pd.DataFrame:
    """The rows of an online-endpoint request body, or ValueError saying what a body must be."""
    table = body.get("input_data") if isinstance(body, dict) else None
    if not (isinstance(table, dict) and isinstance(table.get("columns"), list) and isinstance(table.get("data"), list)):
        raise ValueError(f"the request body must be {BODY_FORMAT}")
    return pd.DataFrame(table["data"], columns=table["columns"], index=table.get("index"))


def run(raw_data: str) -> Any:
    try:
        rows = rows_of(json.loads(raw_data))
        predictions = model.predict(rows)
    except ValueError as error:  # a body or rows the model cannot score (json.JSONDecodeError is a ValueError)
        return AMLResponse({"message": str(error)}, 400, json_str=True)
    return {"predictions": [float(value) for value in predictions]}
