"""Who signs in to Azure: the credential of this environment (a CI workload identity, or DefaultAzureCredential),
proven to get a token before any request is made with it.

azure-identity is imported by the functions that need it, so the CLI starts fast for local commands.
"""

from __future__ import annotations

import os
from typing import Any


class AzureAccessError(RuntimeError):
    """Azure cannot be reached as this project is set up: no credentials, or a resource that differs from its spec.
    The message says what is missing or different and how to fix it."""


ARM_SCOPE = "https://management.azure.com/.default"
GITHUB_OIDC_AUDIENCE = "api://AzureADTokenExchange"
GITHUB_OIDC_VARIABLES = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
AZURE_PIPELINES_VARIABLES = (
    "SYSTEM_OIDCREQUESTURI",
    "SYSTEM_ACCESSTOKEN",
    "AZURESUBSCRIPTION_TENANT_ID",
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
)
NO_CREDENTIALS = (
    "no Azure credentials: sign in with `az login` (then `az account set --subscription <id>`), or set "
    "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET for a service principal; in CI, sign in with a "
    "federated credential as README.md describes"
)


def github_oidc_token() -> str:
    """A fresh GitHub Actions OIDC token for Entra ID's token exchange (the job's id-token permission allows it).

    Asked for anew whenever azure-identity needs an Azure token, so a long submission never outlives its sign-in,
    as an `azure/login` session does after about ten minutes (Azure/azure-cli#28708).
    """
    import json
    import urllib.parse
    import urllib.request

    url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"]
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"audience": GITHUB_OIDC_AUDIENCE})
    authorization = f"bearer {os.environ['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"
    request = urllib.request.Request(url, headers={"Authorization": authorization})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["value"]


def azure_credential() -> Any:
    """The credential of this environment: in CI a workload identity that renews its own sign-in, else
    ``DefaultAzureCredential`` (environment variables, managed identity, `az login`, ...)."""
    from azure.identity import AzurePipelinesCredential, ClientAssertionCredential, DefaultAzureCredential

    if all(os.environ.get(name) for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", *GITHUB_OIDC_VARIABLES)):
        # https://learn.microsoft.com/python/api/azure-identity/azure.identity.clientassertioncredential
        tenant, client = os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"]
        return ClientAssertionCredential(tenant, client, github_oidc_token)
    if all(os.environ.get(name) for name in AZURE_PIPELINES_VARIABLES):
        # The AzureCLI@2 task sets the AZURESUBSCRIPTION_* variables for its workload identity service connection.
        return AzurePipelinesCredential(
            tenant_id=os.environ["AZURESUBSCRIPTION_TENANT_ID"],
            client_id=os.environ["AZURESUBSCRIPTION_CLIENT_ID"],
            service_connection_id=os.environ["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
            system_access_token=os.environ["SYSTEM_ACCESSTOKEN"],
        )
    return DefaultAzureCredential()


def signed_in(credential: Any) -> Any:
    """``credential`` once it has proven it can get a token; else AzureAccessError saying how to sign in."""
    import logging

    from azure.core.exceptions import ClientAuthenticationError

    identity_log = logging.getLogger("azure.identity")
    level = identity_log.level
    identity_log.setLevel(logging.ERROR)  # its ten-line warning of every source tried would bury the one line below
    try:
        credential.get_token(ARM_SCOPE)
    except ClientAuthenticationError:
        raise AzureAccessError(NO_CREDENTIALS) from None
    finally:
        identity_log.setLevel(level)
    return credential
