"""aml-pipeline-kit: run Azure Machine Learning (SDK v2) pipeline jobs offline.

The local runner executes a pipeline job's nodes and command lines on this machine with Azure ML's semantics
(plan, aml_graph, local_runner, step_host, tracking), ``check`` verifies a job offline, and the command line
(``aml-pipeline-kit``) runs a pipeline job file anywhere, or a project's pipelines with their Azure ML glue
(sign-in, get-or-create with drift, submission, tuning, monitoring, deployment). A project names its pipelines and
settings to it by the convention of ``project.py``.
"""

__version__ = "0.15.0"
