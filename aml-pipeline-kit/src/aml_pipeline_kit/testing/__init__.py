"""What a project's tests use to test its Azure ML side offline: ``azure_fake``, Azure ML's HTTP API simulated on
127.0.0.1 (workspace, compute, assets, jobs' MLflow tracking and registry, blob storage), answering as the documented
REST API and the client libraries' source say the service answers, so that the real azure-ai-ml, mlflow and
azureml-mlflow code runs against it and fails where Azure would; ``hostile``, the names a user's CSV may hold
that a project must carry whole."""
