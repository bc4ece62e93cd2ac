"""Fixtures for the MLflow-client tests: a fresh workspace on the live server
(``TRAINYARD_TEST_URL``, ``TRAINYARD_TEST_TOKEN`` as for the SDK's integration
tests), a contributor token for it, and the MLflow client pointed at it the
way a user would: ``MLFLOW_TRACKING_URI`` and ``MLFLOW_TRACKING_TOKEN``."""

import json
import os
import urllib.request
import uuid

import pytest

URL = os.environ.get("TRAINYARD_TEST_URL")
ADMIN = os.environ.get("TRAINYARD_TEST_TOKEN")

if not (URL and ADMIN):
    pytest.skip("the MLflow tests need a live server: set TRAINYARD_TEST_URL and "
                "TRAINYARD_TEST_TOKEN (a server administrator token)", allow_module_level=True)


def call(method, path, token, body=None):
    """One request to Trainyard's own API; returns the JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.fixture(scope="session")
def workspace():
    """A fresh workspace and a contributor token for it."""
    name = f"mlflow-{uuid.uuid4().hex[:10]}"
    call("POST", "/api/v1/workspaces", ADMIN, {"name": name})
    token = call("POST", f"/api/v1/workspaces/{name}/tokens", ADMIN,
                 {"name": "mlflow-tests", "role": "contributor"})["secret"]
    return name, token


@pytest.fixture(scope="session", autouse=True)
def tracking(workspace):
    """The MLflow client, configured only through its environment variables."""
    _, token = workspace
    os.environ["MLFLOW_TRACKING_URI"] = URL
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    # Fail fast instead of retrying answers the tests expect.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    yield


@pytest.fixture(scope="session")
def trainyard_ws(workspace):
    """The same workspace through Trainyard's SDK."""
    from trainyard import Workspace
    name, token = workspace
    return Workspace(URL, name, token)
