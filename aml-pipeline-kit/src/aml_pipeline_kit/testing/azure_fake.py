"""Azure ML's side of a pipeline step, simulated at HTTP level on 127.0.0.1.

A step on Azure ML talks to its workspace through azureml-mlflow: MLflow's REST API (tracking and
model registry) under the workspace's ``azureml://`` tracking URI, the run-history and artifact
services that hand out blob URLs, and blob storage itself. ``submit`` and ``monitor`` talk to Azure Resource
Manager through azure-ai-ml's ``MLClient`` (the workspace, its compute clusters, datastore, assets and schedules)
and to the workspace's storage account. This server answers those calls the way the service does, so the real
client libraries (mlflow, azureml-mlflow, azure-storage-blob, azure-ai-ml) run unchanged against it:

- paths and payloads: MLflow's REST API (``/api/2.0/mlflow/...``, https://mlflow.org/docs/latest/api_reference/rest-api.html)
  under ``/mlflow/v2.0/<workspace scope>`` (azureml-mlflow ``_store/azureml_reststore.py`` builds it for
  MLflow 3), the run-artifact and artifact services (``/history/v1.0/...``, ``/artifact/v2.0/...``, from
  azureml-mlflow's generated REST clients ``_restclient/run_artifact`` and ``_restclient/artifact``), and
  the blob service's Put Blob, Get Blob, Get Blob Properties and Set Blob Metadata
  (https://learn.microsoft.com/rest/api/storageservices/put-blob), path-style on 127.0.0.1 for the URLs the
  artifact services hand out, and at the storage account's public endpoint (``BLOB_HOST``), which azure-ai-ml
  builds from a datastore, through the fake's own proxy (``proxy_url``: HTTPS_PROXY; CONNECT, then TLS with the
  fake's certificate), so that no name needs resolving;
- Azure Resource Manager (``/subscriptions/.../workspaces/<name>``, api-version 2025-12-01, the one azure-ai-ml's
  generated ``arm_ml_service`` client sends): Workspaces - Get, Compute - Get and Create Or Update
  (https://learn.microsoft.com/rest/api/azureml/compute/create-or-update), Datastores - Get and List Secrets, the
  versions of environments, data, code, components and models (Get, List, Create Or Update; code's Start Pending
  Upload), Schedules - Create Or Update, Online Endpoints and Online Deployments - Create Or Update and Get
  (provisioned at once) and Jobs - Create Or Update and Get (a job is stored, not run: it is
  answered ``job_status``, by default Completed, as is its run's details in the run history, so that streaming it
  ends at once; the workspace's discovery document names this server for the data-plane services), with the shapes
  of the REST API's own examples (azure-rest-api-specs,
  ``specification/machinelearningservices/.../2025-12-01/examples``): the VM size answered in capitals, the idle
  time as an ISO 8601 duration (``PT2M``), a compute PUT answered ``201``/``200`` with an ``Azure-AsyncOperation``
  to poll, an asset version immutable; as ARM does, a PUT without ``location`` is refused (``LocationRequired``)
  and a request without the bearer token of ``FakeCredential`` gets 401;
- the service's known answers: the logged-models API that MLflow 3 uses is not implemented and answers
  404 with an empty body (Azure/azure-sdk-for-python#44896); a job's run holds ``user_logs/`` beside what
  the step logs;
- HTTPS only, as azureml-mlflow builds ``https://`` URLs from the tracking URI: the server makes a
  self-signed certificate that the clients trust through ``REQUESTS_CA_BUNDLE``.

Tests can make an operation fail (``fail``) and read what was asked (``requests``, and the bodies of Resource
Manager's writes in ``arm_writes``) and stored.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE = "00000000-0000-0000-0000-000000000000", "rg-test", "mlw-test"
TENANT = "00000000-0000-0000-0000-00000000000a"  # the Entra ID tenant that signs in
SCOPE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
)
STORAGE_ACCOUNT = "mlwteststorage"
LOCATION = "westeurope"  # the workspace's region
# The storage account's blob endpoint in Azure's public cloud, as azure-ai-ml builds it from a datastore: clients reach
# it through the fake's proxy (``proxy_url``), which answers as the blob service, so no name needs resolving.
BLOB_HOST = f"{STORAGE_ACCOUNT}.blob.core.windows.net"
# The versioned assets of a workspace, and what the service adds to a version it stores.
ASSET_KINDS: dict[str, dict[str, Any]] = {
    "environments": {"environmentType": "UserCreated"},
    "data": {},
    "codes": {},
    "components": {},
    "models": {},
}
DATASTORE, CONTAINER = "workspaceblobstore", "azureml-blobstore-00000000-0000-0000-0000-000000000001"
TOKEN_KEY = "a signing key that nothing verifies"  # signs the tokens the fake hands out, so that it knows its own
STORAGE_KEY = base64.b64encode(b"a storage account key nothing verifies").decode()
BLOB_SAS = "sv=2021-08-06&sr=b&sp=rcw&sig=fake"
# The environment of a process that must not leave this machine: MLflow's usage telemetry off, and any request for an
# address other than the loopback (the fake's own) goes to a proxy on a closed loopback port, so it fails at once.
CLOSED_LOOPBACK_PROXY = "http://127.0.0.1:9"
OFFLINE = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    **dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), CLOSED_LOOPBACK_PROXY),
    **dict.fromkeys(("NO_PROXY", "no_proxy"), "127.0.0.1,localhost"),
}


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files; the certificate is its own CA bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost"), x509.DNSName(BLOB_HOST)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fake-azure.pem", folder / "fake-azure.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def run_token(run_id: str) -> str:
    """A token shaped like the one Azure ML gives a job (MLFLOW_TRACKING_TOKEN): azureml-mlflow reads its expiry."""
    claims = {"exp": int(time.time()) + 3600, "runId": run_id}
    return jwt.encode(claims, TOKEN_KEY, algorithm="HS256")


def is_access_token(authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries a bearer token ``FakeCredential`` handed out."""
    token = (authorization or "").removeprefix("Bearer ")
    try:
        jwt.decode(token, TOKEN_KEY, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.InvalidTokenError:
        return False
    return bool(authorization and authorization.startswith("Bearer "))


def millis() -> int:
    return int(time.time() * 1000)


def system_data(earlier: dict[str, Any] | None) -> dict[str, str]:
    """An ARM resource's ``systemData`` as it is written now, over its ``earlier`` state if any."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    created = earlier["systemData"]["createdAt"] if earlier else now
    return {"createdAt": created, "lastModifiedAt": now, "createdByType": "User"}


@dataclass
class Run:
    run_id: str
    experiment_id: str
    experiment_name: str
    status: str = "RUNNING"
    start_time: int = field(default_factory=millis)
    end_time: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    # The run's artifact container; every Azure ML job's run has its logs there.
    artifacts: dict[str, bytes] = field(default_factory=lambda: {"user_logs/std_log.txt": b"step log\n"})

    def info(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_uuid": self.run_id,
            "run_name": self.run_id,
            "experiment_id": self.experiment_id,
            "status": self.status,
            "start_time": self.start_time,
            **({"end_time": self.end_time} if self.end_time else {}),
            # What Azure ML answers: the run's container, named by experiment and run.
            "artifact_uri": f"azureml://experiments/{self.experiment_name}/runs/{self.run_id}/artifacts",
            "lifecycle_stage": "active",
        }

    def as_json(self) -> dict[str, Any]:
        data = {
            "tags": [{"key": key, "value": value} for key, value in self.tags.items()],
            "params": [{"key": key, "value": value} for key, value in self.params.items()],
            "metrics": [
                {"key": key, "value": value, "timestamp": self.start_time, "step": 0}
                for key, value in self.metrics.items()
            ],
        }
        return {"info": self.info(), "data": data, "inputs": {}}


@dataclass
class ModelVersion:
    name: str
    version: str
    source: str
    run_id: str
    tags: dict[str, str]
    created: int = field(default_factory=millis)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "run_id": self.run_id,
            "status": "READY",
            "current_stage": "None",
            "creation_timestamp": self.created,
            "last_updated_timestamp": self.created,
            "tags": [{"key": key, "value": value} for key, value in self.tags.items()],
        }


class MlflowError(Exception):
    """An MLflow REST error: the HTTP status and MLflow's ``error_code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class ArmError(Exception):
    """An Azure Resource Manager error: the HTTP status and ARM's error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class FakeCredential:
    """Entra ID's side for ``MLClient``: an access token, a JWT as Entra ID's are, whose audience is the resource of the
    scope asked for (azure-ai-ml reads it before it submits a pipeline job), signed so that the fake's Resource
    Manager routes accept it and no other."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        claims = {"aud": scopes[0].removesuffix("/.default"), "tid": TENANT, "exp": int(time.time()) + 3600}
        return AccessToken(jwt.encode(claims, TOKEN_KEY, algorithm="HS256"), claims["exp"])


@dataclass
class Failure:
    status: int
    body: dict[str, Any] | None


class FakeAzureML:
    """The workspace state and the HTTPS server in front of it; ``with FakeAzureML(folder) as fake: ...``."""

    def __init__(self, folder: Path) -> None:
        self.cert, self.key = self_signed_certificate(folder)
        self.lock = threading.Lock()
        self.experiments: dict[str, str] = {}  # id -> name
        self.runs: dict[str, Run] = {}
        self.registered_models: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[ModelVersion]] = {}
        self.blobs: dict[str, bytes] = {}  # "<container>/<blob path>" -> content
        self.blob_metadata: dict[str, dict[str, str]] = {}  # "<container>/<blob path>" -> its x-ms-meta-* headers
        self.fail: dict[str, Failure] = {}  # operation name (e.g. "model-versions/search") -> its answer
        # registered-models/create of a name that exists: MLflow's server answers 400 RESOURCE_ALREADY_EXISTS; a
        # registry may answer 409 ALREADY_EXISTS (Unity Catalog's, mlflow/mlflow#8219; MLflow reads any 409 so,
        # mlflow/exceptions.py), as Azure ML's registries answer an existing asset 409 (azureml-mlflow's
        # _client/artifact/registry_client.py). MLflow's own register_model accepts both.
        self.existing_name_answer = (400, "RESOURCE_ALREADY_EXISTS")
        self.requests: list[tuple[str, str]] = []
        self.computes: dict[str, dict[str, Any]] = {}  # name -> the compute resource as Compute - Get answers it
        # (kind, name, version) -> the asset version as Get answers it; kind: environments, data, codes, components
        self.assets: dict[tuple[str, str, str], dict[str, Any]] = {}
        # Resource Manager's writes (PUT, PATCH, DELETE): method, path under the workspace, JSON body
        self.arm_writes: list[tuple[str, str, dict[str, Any]]] = []
        self.operations: dict[str, str] = {}  # asynchronous operation id -> its status
        self.schedules: dict[str, dict[str, Any]] = {}  # name -> the schedule as Schedules - Get answers it
        self.jobs: dict[str, dict[str, Any]] = {}  # name -> the job as Jobs - Get answers it
        self.endpoints: dict[
            str, dict[str, Any]
        ] = {}  # name -> the online endpoint as Online Endpoints - Get answers it
        # (endpoint, name) -> the online deployment as Online Deployments - Get answers it
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        # The fake runs no job: a job it was sent is answered as one that ran to this status, at once.
        self.job_status = "Completed"
        self.server = ThreadingHTTPServer((HOST, 0), self.handler_class())
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(self.cert, self.key)
        self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.proxy = ThreadingHTTPServer((HOST, 0), self.tunnel_class())
        self.threads = [
            threading.Thread(target=server.serve_forever, daemon=True) for server in (self.server, self.proxy)
        ]

    def __enter__(self) -> FakeAzureML:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for server in (self.server, self.proxy):
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join()

    @property
    def netloc(self) -> str:
        return f"{HOST}:{self.server.server_address[1]}"

    @property
    def proxy_url(self) -> str:
        """An HTTP proxy that tunnels to the fake: HTTPS_PROXY for clients of the storage account's blob endpoint."""
        return f"http://{HOST}:{self.proxy.server_address[1]}"

    @property
    def tracking_uri(self) -> str:
        """The workspace's MLflow tracking URI, as ``MLClient.workspaces.get(...).mlflow_tracking_uri`` gives it."""
        return f"azureml://{self.netloc}/mlflow/v1.0{SCOPE}"

    def start_job_run(self, experiment_name: str) -> Run:
        """The run Azure ML creates for a pipeline step before its command starts."""
        with self.lock:
            experiment_id = next((i for i, n in self.experiments.items() if n == experiment_name), None)
            if experiment_id is None:
                experiment_id = str(uuid.uuid4())
                self.experiments[experiment_id] = experiment_name
            run = Run(str(uuid.uuid4()), experiment_id, experiment_name)
            self.runs[run.run_id] = run
        return run

    def step_environment(self, run: Run) -> dict[str, str]:
        """The variables Azure ML sets for a step's command (azureml-mlflow reads them), and trust in this server."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_TRACKING_TOKEN": run_token(run.run_id),
            "MLFLOW_RUN_ID": run.run_id,
            "MLFLOW_EXPERIMENT_ID": run.experiment_id,
            "MLFLOW_EXPERIMENT_NAME": run.experiment_name,
            "AZUREML_RUN_ID": run.run_id,
            # The cloud by name: otherwise azureml-mlflow asks Azure Resource Manager for the cloud's endpoints.
            "AZUREML_CURRENT_CLOUD": "AzureCloud",
            "REQUESTS_CA_BUNDLE": str(self.cert),
        }

    def add_version(self, name: str, tags: dict[str, str]) -> ModelVersion:
        """A version registered earlier (by another job)."""
        with self.lock:
            self.registered_models.setdefault(name, {"name": name, "creation_timestamp": millis()})
            return self.new_version(name, "azureml://artifacts/earlier/model", "", tags)

    def new_version(self, name: str, source: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
        """The next version of a registered model; the workspace lists it among its model assets too, as an MLflow
        model (what azure-ai-ml finds when it resolves ``azureml:<name>@latest``)."""
        versions = self.versions.setdefault(name, [])
        version = ModelVersion(name, str(len(versions) + 1), source, run_id, tags)
        versions.append(version)
        properties = {
            "modelType": "mlflow_model",
            "modelUri": source,
            "flavors": {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}},
            "tags": tags,
        }
        self.put_asset("models", name, version.version, {"properties": properties})
        return version

    def files_of(self, source: str) -> dict[str, bytes]:
        """The uploaded files under a version's ``source`` (``azureml://artifacts/<origin>/<container>/<path>``)."""
        prefix = source.removeprefix("azureml://artifacts/").rstrip("/") + "/"
        return {path.removeprefix(prefix): data for path, data in self.blobs.items() if path.startswith(prefix)}

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake.dispatch(self, "GET")

            def do_POST(self) -> None:
                fake.dispatch(self, "POST")

            def do_PUT(self) -> None:
                fake.dispatch(self, "PUT")

            def do_PATCH(self) -> None:
                fake.dispatch(self, "PATCH")

            def do_DELETE(self) -> None:
                fake.dispatch(self, "DELETE")

            def do_HEAD(self) -> None:
                fake.dispatch(self, "HEAD")

        return Handler

    def tunnel_class(self) -> type[BaseHTTPRequestHandler]:
        fake, handler = self, self.handler_class()

        class Tunnel(BaseHTTPRequestHandler):
            """CONNECT to the blob endpoint: TLS with the fake's certificate, then the fake's own handler."""

            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_CONNECT(self) -> None:
                if self.path != f"{BLOB_HOST}:443":
                    self.send_error(403, f"the fake tunnels to {BLOB_HOST}:443 only")
                    return
                self.send_response(200, "Connection Established")
                self.end_headers()
                with fake.tls.wrap_socket(self.connection, server_side=True) as tunnel:
                    handler(tunnel, self.client_address, fake.server)
                self.close_connection = True

        return Tunnel

    # --- dispatch -------------------------------------------------------------------------------------------

    def dispatch(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        self.requests.append((method, url.path))
        # Through the tunnel, a blob request names its account by host, as in the public cloud.
        path = f"/{STORAGE_ACCOUNT}{url.path}" if request.headers.get("Host") == BLOB_HOST else url.path
        try:
            status, headers, payload = self.route(method, path, parse_qs(url.query), body, request.headers)
        except MlflowError as error:
            status, headers = error.status, {}
            payload = json.dumps({"error_code": error.code, "message": str(error)}).encode()
        except ArmError as error:
            status, headers = error.status, {}
            payload = json.dumps({"error": {"code": error.code, "message": str(error)}}).encode()
        request.send_response(status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **headers}
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        if method != "HEAD":
            request.wfile.write(payload)

    def route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: Any
    ) -> tuple[int, dict[str, str], bytes]:
        mlflow_prefix = f"/mlflow/v2.0{SCOPE}/api/2.0/mlflow/"
        if path.startswith(mlflow_prefix):
            operation = path.removeprefix(mlflow_prefix)
            if operation.startswith("logged-models"):
                return 404, {}, b""  # not implemented by Azure ML (Azure/azure-sdk-for-python#44896)
            if failure := self.fail.get(operation):
                return failure.status, {}, json.dumps(failure.body).encode() if failure.body else b""
            arguments = json.loads(body) if body else {key: values[0] for key, values in query.items()}
            with self.lock:
                return 200, {}, json.dumps(self.mlflow(operation, arguments)).encode()
        run_artifacts = rf"/history/v1\.0{SCOPE}/experiments/([^/]+)/runs/([^/]+)/artifacts(/batch/metadata)?"
        if match := re.fullmatch(run_artifacts, path):
            experiment, run_id, batch = match.groups()
            with self.lock:
                return 200, {}, json.dumps(self.run_artifacts(experiment, run_id, batch, body)).encode()
        if match := re.fullmatch(rf"/artifact/v2\.0{SCOPE}/artifacts/([^/]+)/([^/]+)/batch/metadata", path):
            origin, container = match.groups()
            with self.lock:
                return 200, {}, json.dumps(self.create_empty_artifacts(origin, container, body)).encode()
        if method == "GET" and (match := re.fullmatch(rf"/history/v1\.0{SCOPE}/runs/([^/]+)/details", path)):
            with self.lock:
                return 200, {}, json.dumps(self.run_details(match.group(1))).encode()
        if method == "GET" and path == "/discovery":
            return 200, {}, json.dumps(self.discovery()).encode()
        if path.startswith(f"/{STORAGE_ACCOUNT}/"):
            return self.blob(method, path.removeprefix(f"/{STORAGE_ACCOUNT}/"), query, body, headers)
        if path.startswith(f"/subscriptions/{SUBSCRIPTION}/"):
            if not is_access_token(headers.get("Authorization")):
                raise ArmError(401, "AuthenticationFailed", "Authentication failed: no valid bearer token.")
            with self.lock:
                return self.arm(method, path, query, json.loads(body) if body else {})
        return 404, {}, json.dumps({"error": {"code": "NotFound", "message": f"no route {method} {path}"}}).encode()

    # --- MLflow REST ----------------------------------------------------------------------------------------

    def run(self, run_id: str) -> Run:
        if run_id not in self.runs:
            raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found")
        return self.runs[run_id]

    def registered(self, name: str) -> dict[str, Any]:
        if name not in self.registered_models:
            raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Model {name} not found")
        return self.registered_models[name]

    def version(self, name: str, number: str) -> ModelVersion:
        for version in self.versions.get(name, []):
            if version.version == str(number):
                return version
        raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Model {name} version {number} not found")

    def mlflow(self, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if operation == "experiments/get":
            experiment_id = arguments["experiment_id"]
            if experiment_id not in self.experiments:
                raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Experiment '{experiment_id}' not found")
            name = self.experiments[experiment_id]
            return {"experiment": {"experiment_id": experiment_id, "name": name, "lifecycle_stage": "active"}}
        if operation == "runs/get":
            return {"run": self.run(arguments["run_id"]).as_json()}
        if operation == "runs/update":
            run = self.run(arguments.get("run_id") or arguments["run_uuid"])
            run.status = arguments.get("status", run.status)
            run.end_time = int(arguments["end_time"]) if arguments.get("end_time") else run.end_time
            return {"run_info": run.info()}
        if operation == "runs/log-batch":
            run = self.run(arguments["run_id"])
            run.tags.update({tag["key"]: tag["value"] for tag in arguments.get("tags", [])})
            run.params.update({param["key"]: param["value"] for param in arguments.get("params", [])})
            run.metrics.update({metric["key"]: float(metric["value"]) for metric in arguments.get("metrics", [])})
            return {}
        if operation == "runs/set-tag":
            self.run(arguments.get("run_id") or arguments["run_uuid"]).tags[arguments["key"]] = arguments["value"]
            return {}
        if operation == "registered-models/create":
            name = arguments["name"]
            if name in self.registered_models:
                status, code = self.existing_name_answer
                raise MlflowError(status, code, f"Registered Model (name={name}) already exists.")
            self.registered_models[name] = {"name": name, "creation_timestamp": millis()}
            self.versions[name] = []
            return {"registered_model": self.registered_models[name]}
        if operation == "registered-models/get":
            return {"registered_model": self.registered(arguments["name"])}
        if operation == "model-versions/create":
            name = arguments["name"]
            self.registered(name)
            tags = {tag["key"]: tag["value"] for tag in arguments.get("tags", [])}
            version = self.new_version(name, arguments["source"], arguments.get("run_id", ""), tags)
            return {"model_version": version.as_json()}
        if operation == "model-versions/get":
            return {"model_version": self.version(arguments["name"], arguments["version"]).as_json()}
        if operation == "model-versions/set-tag":
            self.version(arguments["name"], arguments["version"]).tags[arguments["key"]] = arguments["value"]
            return {}
        if operation == "model-versions/search":
            match = re.fullmatch(r"\s*name\s*=\s*'([^']*)'\s*", arguments.get("filter", ""))
            if not match:
                raise MlflowError(400, "INVALID_PARAMETER_VALUE", f"unsupported filter {arguments.get('filter')!r}")
            return {"model_versions": [version.as_json() for version in self.versions.get(match.group(1), [])]}
        raise MlflowError(404, "ENDPOINT_NOT_FOUND", f"no MLflow operation {operation}")

    # --- Azure Resource Manager ----------------------------------------------------------------------------

    @property
    def cloud(self) -> dict[str, Any]:
        """``MLClient``'s keywords for a cloud whose Resource Manager is this server (azure-ai-ml's ``cloud`` and
        ``cloud_metadata``, as for a sovereign cloud); a name of its own, as azure-ai-ml keeps each cloud it meets."""
        local = f"https://{self.netloc}/"
        metadata = {
            "azure_portal": local,
            "resource_manager": local,
            "active_directory": local,
            "aml_resource_id": local,
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": local,
        }
        return {"cloud": f"FakeAzureML{self.server.server_address[1]}", "cloud_metadata": metadata}

    def arm(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        # An asset's name may come with azure-ai-ml's own `azureml:` prefix, which it keeps when it resolves a label
        # such as @latest (_operation_orchestrator._resolve_name_version_from_name_label): the service takes it off.
        path = unquote(path).replace("/azureml:", "/")
        if method in ("PUT", "PATCH", "DELETE"):
            self.arm_writes.append((method, path.removeprefix(SCOPE), body))
        status_prefix = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/"
        if method == "GET" and (match := re.fullmatch(rf"{status_prefix}[^/]+/computeOperationsStatus/([^/]+)", path)):
            operation = match.group(1)
            return 200, {}, json.dumps({"id": path, "name": operation, "status": self.operations[operation]}).encode()
        if method == "GET" and path == SCOPE:
            return 200, {}, json.dumps(self.workspace()).encode()
        if match := re.fullmatch(rf"{re.escape(SCOPE)}/computes/([^/]+)", path):
            name = match.group(1)
            if method == "GET":
                if name not in self.computes:
                    raise ArmError(404, "NotFound", f"Compute {name} not found in workspace {WORKSPACE}")
                return 200, {}, json.dumps(self.computes[name]).encode()
            if method == "PUT":
                return self.put_compute(name, body)
        if method == "GET" and path == f"{SCOPE}/datastores/{DATASTORE}":
            return 200, {}, json.dumps(self.datastore()).encode()
        if method == "POST" and path == f"{SCOPE}/datastores/{DATASTORE}/listSecrets":
            return 200, {}, json.dumps({"secretsType": "AccountKey", "key": STORAGE_KEY}).encode()
        if match := re.fullmatch(rf"{re.escape(SCOPE)}/schedules/([^/]+)", path):
            name = match.group(1)
            if method == "PUT":
                return self.put_schedule(name, body)
            if method == "GET" and name in self.schedules:
                return 200, {}, json.dumps(self.schedules[name]).encode()
            raise ArmError(404, "NotFound", f"Schedule {name} not found")
        if match := re.fullmatch(rf"{re.escape(SCOPE)}/onlineEndpoints/([^/]+)(?:/deployments/([^/]+))?", path):
            endpoint, deployment = match.groups()
            stored, key = (self.deployments, (endpoint, deployment)) if deployment else (self.endpoints, endpoint)
            if method == "PUT":
                if deployment and endpoint not in self.endpoints:
                    raise ArmError(404, "NotFound", f"Online endpoint {endpoint} not found")
                return self.put_online(stored, key, path, body)
            if method == "GET" and key in stored:
                return 200, {}, json.dumps(stored[key]).encode()
            raise ArmError(404, "NotFound", f"{'Online deployment' if deployment else 'Online endpoint'} not found")
        if match := re.fullmatch(rf"{re.escape(SCOPE)}/jobs/([^/]+)", path):
            name = match.group(1)
            if method == "PUT":
                return self.put_job(name, body)
            if method == "GET" and name in self.jobs:
                return 200, {}, json.dumps(self.jobs[name]).encode()
            raise ArmError(404, "UserError", f"Job {name} not found")
        kinds = "|".join(ASSET_KINDS)
        if method == "GET" and (match := re.fullmatch(rf"{re.escape(SCOPE)}/({kinds})/([^/]+)/versions", path)):
            return 200, {}, json.dumps({"value": self.asset_versions(*match.groups(), query)}).encode()
        pending = rf"{re.escape(SCOPE)}/codes/([^/]+)/versions/([^/]+)/startPendingUpload"
        if method == "POST" and (match := re.fullmatch(pending, path)):
            return 200, {}, json.dumps(self.pending_upload(*match.groups())).encode()
        if match := re.fullmatch(rf"{re.escape(SCOPE)}/({kinds})/([^/]+)/versions/([^/]+)", path):
            key = match.group(1), match.group(2), match.group(3)
            if method == "GET":
                if key not in self.assets:
                    raise ArmError(404, "NotFound", f"{key[0]} {key[1]} version {key[2]} not found")
                return 200, {}, json.dumps(self.assets[key]).encode()
            if method == "PUT":
                return self.put_asset(*key, body)
        raise ArmError(404, "NotFound", f"no route {method} {path}")

    def workspace(self) -> dict[str, Any]:
        """Workspaces - Get (examples/Workspace/get.json), the fields azure-ai-ml reads."""
        storage = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Storage"
        return {
            "id": SCOPE,
            "name": WORKSPACE,
            "type": "Microsoft.MachineLearningServices/workspaces",
            "location": LOCATION,
            "properties": {
                "friendlyName": WORKSPACE,
                "provisioningState": "Succeeded",
                "storageAccount": f"{storage}/storageAccounts/{STORAGE_ACCOUNT}",
                "discoveryUrl": f"https://{self.netloc}/discovery",
                "mlFlowTrackingUri": self.tracking_uri,
            },
        }

    def datastore(self) -> dict[str, Any]:
        """Datastores - Get of the workspace's default blob datastore (examples/Datastore/get.json)."""
        return {
            "id": f"{SCOPE}/datastores/{DATASTORE}",
            "name": DATASTORE,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "isDefault": True,
                "credentials": {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey"}},
                "datastoreType": "AzureBlob",
                "accountName": STORAGE_ACCOUNT,
                "containerName": CONTAINER,
                "endpoint": "core.windows.net",
                "protocol": "https",
            },
        }

    def put_compute(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Compute - Create Or Update of an AmlCompute cluster: stored as Compute - Get answers it, and answered as
        the long-running operation it is (201 created, 200 updated; Azure-AsyncOperation to poll)."""
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        properties = body.get("properties") or {}
        if (compute_type := properties.get("computeType")) != "AmlCompute":
            raise ArmError(400, "BadRequest", f"computeType {compute_type!r}: the fake knows AmlCompute only")
        cluster = properties.get("properties") or {}
        scale = cluster.get("scaleSettings") or {}
        if not cluster.get("vmSize") or not isinstance(scale.get("maxNodeCount"), int):
            raise ArmError(400, "BadRequest", "AmlCompute needs properties.vmSize and scaleSettings.maxNodeCount")
        earlier = self.computes.get(name)
        now = datetime.datetime.now(datetime.UTC).isoformat()
        self.computes[name] = {
            "id": f"{SCOPE}/computes/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/computes",
            "location": body["location"],
            **({"tags": body["tags"]} if body.get("tags") else {}),
            "properties": {
                **{key: value for key, value in properties.items() if key != "properties"},
                "computeLocation": body["location"],
                "provisioningState": "Succeeded",
                "createdOn": earlier["properties"]["createdOn"] if earlier else now,
                "modifiedOn": now,
                "properties": {
                    **cluster,
                    "vmSize": cluster["vmSize"].upper(),  # as the service answers it (examples/Compute/get)
                    "scaleSettings": {"minNodeCount": 0, **scale},
                    "allocationState": "Steady",
                    "currentNodeCount": 0,
                    "targetNodeCount": scale.get("minNodeCount", 0),
                },
            },
        }
        operation = str(uuid.uuid4())
        self.operations[operation] = "Succeeded"
        status_url = (
            f"https://{self.netloc}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices"
            f"/locations/{body['location']}/computeOperationsStatus/{operation}?api-version=2025-12-01"
        )
        state = "Updating" if earlier else "Creating"
        answer = {**self.computes[name], "properties": {"computeType": "AmlCompute", "provisioningState": state}}
        # Retry-After: 0, so that the client polls at once instead of after azure-ai-ml's default of 30 s.
        headers = {"Azure-AsyncOperation": status_url, "Retry-After": "0"}
        return 200 if earlier else 201, headers, json.dumps(answer).encode()

    def asset_versions(self, kind: str, name: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """<Kind> Versions - List, newest first, with the code versions' ``hash`` filter azure-ai-ml uses to find
        code it uploaded before."""
        found = [asset for (k, n, _), asset in self.assets.items() if (k, n) == (kind, name)]
        if "hash" in query:
            found = [asset for asset in found if asset["properties"]["properties"].get("hash_sha256") in query["hash"]]
        return found[::-1]

    def pending_upload(self, name: str, version: str) -> dict[str, Any]:
        """Code Versions - Create Or Get Start Pending Upload: a blob folder and a SAS to upload the code into."""
        blob_uri = f"https://{BLOB_HOST}/{CONTAINER}/LocalUpload/{uuid.uuid4().hex}/{name}"
        return {
            "blobReferenceForConsumption": {
                "blobUri": blob_uri,
                "storageAccountArmId": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
                f"/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}",
                "credential": {"credentialType": "SAS", "sasUri": f"{blob_uri}?{BLOB_SAS}"},
            },
            "pendingUploadId": str(uuid.uuid4()),
            "pendingUploadType": "TemporaryBlobReference",
        }

    def put_schedule(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Schedules - Create Or Update (examples/Schedule/createOrUpdate.json): the schedule as sent, provisioned."""
        earlier = self.schedules.get(name)
        self.schedules[name] = {
            "id": f"{SCOPE}/schedules/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/schedules",
            "properties": {**body.get("properties", {}), "provisioningState": "Succeeded"},
            "systemData": system_data(earlier),
        }
        return 200 if earlier else 201, {}, json.dumps(self.schedules[name]).encode()

    def put_job(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Jobs - Create Or Update (examples/Job/PipelineJob/createOrUpdate.json): the job as sent, with the status and
        the studio link the service adds (``job_status``: the fake runs no job)."""
        properties = body.get("properties") or {}
        studio = f"https://ml.azure.com/runs/{name}?wsid={SCOPE}"
        self.jobs[name] = {
            "id": f"{SCOPE}/jobs/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": {
                **properties,
                "experimentName": properties.get("experimentName") or "Default",
                "status": self.job_status,
                "services": {"Studio": {"jobServiceType": "Studio", "endpoint": studio}},
            },
            "systemData": system_data(self.jobs.get(name)),
        }
        return 201, {}, json.dumps(self.jobs[name]).encode()

    def put_online(
        self, stored: dict[Any, dict[str, Any]], key: Any, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        """Online Endpoints or Online Deployments - Create Or Update (examples/OnlineEndpoint/createOrUpdate.json,
        examples/OnlineDeployment/.../createOrUpdate.json), answered as done at once (provisioningState Succeeded,
        which ends azure-ai-ml's polling), with what the service adds: an endpoint's scoring URI, a deployment's
        default scale settings."""
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        earlier = stored.get(key)
        name = path.rsplit("/", 1)[1]
        properties = {**body.get("properties", {}), "provisioningState": "Succeeded"}
        if stored is self.endpoints:
            host = f"https://{name}.{LOCATION}.inference.ml.azure.com"
            properties |= {"scoringUri": f"{host}/score", "swaggerUri": f"{host}/swagger.json"}
        else:  # a managed deployment's scale settings, when it sends none
            properties.setdefault("scaleSettings", {"scaleType": "Default"})
        stored[key] = {
            **body,
            "id": path,
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
            + ("" if stored is self.endpoints else "/deployments"),
            "properties": properties,
            "systemData": system_data(earlier),
        }
        return 200 if earlier else 201, {}, json.dumps(stored[key]).encode()

    def run_details(self, run_id: str) -> dict[str, Any]:
        """Runs - Get Details of the run history: a submitted job's run, in its status, with no log files."""
        if run_id not in self.jobs:
            raise ArmError(404, "UserError", f"Run {run_id} not found")
        return {"runId": run_id, "status": self.jobs[run_id]["properties"]["status"], "warnings": [], "logFiles": {}}

    def discovery(self) -> dict[str, str]:
        """The workspace's discovery document (its ``discoveryUrl``): the data-plane services, all of them here."""
        local = f"https://{self.netloc}"
        services = ("api", "catalog", "experimentation", "gallery", "history", "hyperdrive", "labeling", "pipelines")
        return {**dict.fromkeys(services, local), "modelmanagement": local, "studio": "https://ml.azure.com"}

    def put_asset(self, kind: str, name: str, version: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """<Kind> Versions - Create Or Update (examples/Workspace/EnvironmentVersion/createOrUpdate.json and its
        siblings): synchronous; a version, once there, is immutable."""
        if (kind, name, version) in self.assets:
            raise ArmError(409, "Conflict", f"{kind} {name} version {version} exists and cannot be changed")
        self.assets[kind, name, version] = {
            "id": f"{SCOPE}/{kind}/{name}/versions/{version}",
            "name": version,
            "type": f"Microsoft.MachineLearningServices/workspaces/{kind}/versions",
            "properties": {**body.get("properties", {}), **ASSET_KINDS[kind]},
            "systemData": system_data(None),
        }
        return 201, {}, json.dumps(self.assets[kind, name, version]).encode()

    # --- run history and artifact services -----------------------------------------------------------------

    def content_information(self, container: str, path: str) -> dict[str, str]:
        uri = f"https://{self.netloc}/{STORAGE_ACCOUNT}/{container}/{path}?{BLOB_SAS}"
        return {"contentUri": uri, "origin": container.split("/")[0], "container": container, "path": path}

    def run_artifacts(self, experiment: str, run_id: str, batch: str | None, body: bytes) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is None or run.experiment_name != experiment:
            raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"no run {run_id} in experiment {experiment}")
        container = f"ExperimentRun/dcid.{run_id}"
        if not batch:  # list: every artifact of the run's container, at every depth
            return {"value": [{"origin": "ExperimentRun", "container": container, "path": p} for p in run.artifacts]}
        paths = [item["path"] for item in json.loads(body)["paths"]]
        for path in paths:
            run.artifacts.setdefault(path, b"")
        return {
            "artifacts": {p: {"origin": "ExperimentRun", "container": container, "path": p} for p in paths},
            "artifactContentInformation": {p: self.content_information(container, p) for p in paths},
            "errors": {},
        }

    def create_empty_artifacts(self, origin: str, container: str, body: bytes) -> dict[str, Any]:
        paths = [item["path"] for item in json.loads(body)["paths"]]
        full = f"{origin}/{container}"
        return {
            "artifacts": {p: {"origin": origin, "container": container, "path": p} for p in paths},
            "artifactContentInformation": {p: self.content_information(full, p) for p in paths},
            "errors": {},
        }

    def blob(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: Any
    ) -> tuple[int, dict[str, str], bytes]:
        """Put Blob, Get Blob, Get Blob Properties (HEAD) and Set Blob Metadata (``comp=metadata``), with the
        ``x-ms-meta-*`` headers a blob carries."""
        path = unquote(path)
        metadata = {name: value for name, value in headers.items() if name.lower().startswith("x-ms-meta-")}
        stamp = {
            "ETag": f'"0x{uuid.uuid4().hex[:16].upper()}"',
            "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-version": headers.get("x-ms-version", "2021-08-06"),
        }
        if method == "PUT" and query.get("comp") == ["metadata"] and path in self.blobs:
            self.blob_metadata[path] = metadata
            return 200, stamp, b""
        if method == "PUT" and headers.get("x-ms-blob-type") == "BlockBlob":
            with self.lock:
                self.blobs[path], self.blob_metadata[path] = body, metadata
                run_match = re.fullmatch(r"ExperimentRun/dcid\.([^/]+)/(.+)", path)
                if run_match and run_match.group(1) in self.runs:
                    self.runs[run_match.group(1)].artifacts[run_match.group(2)] = body
            return 201, {**stamp, "x-ms-request-server-encrypted": "true"}, b""
        if method in ("GET", "HEAD") and path in self.blobs:
            data = self.blobs[path]
            found = {**stamp, **self.blob_metadata.get(path, {}), "x-ms-blob-type": "BlockBlob"}
            return 200, {**found, "Content-Type": "application/octet-stream"}, data
        error = b'<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code></Error>'
        return 404, {"Content-Type": "application/xml", "x-ms-error-code": "BlobNotFound"}, error
