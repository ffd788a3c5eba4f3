"""pytest fixtures: a started fake Workspace with the programme user and a service account whose
key file points its ``token_uri`` at the server; and a backend built against it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rmdaemon.backends.google import GoogleBackend
from rmdaemon.config import GoogleBackendSettings
from tests.servers.google.server import GoogleServer

PROGRAMME = "mentoring@example.com"
SERVICE_ACCOUNT = "rmdaemon@rm-test.iam.gserviceaccount.com"
KEYLESS = "rmdaemon-keyless@rm-test.iam.gserviceaccount.com"
POOL = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/on-prem/providers/k8s"
WORKLOAD = "principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/on-prem/subject/rmdaemon"


@pytest.fixture
def google_server(tmp_path: Path) -> Iterator[GoogleServer]:
    server = GoogleServer()
    server.start(tmp_path / "google-test-ca.pem")
    server.control.add_user(PROGRAMME, "Reverse Mentoring")
    server.control.add_service_account(SERVICE_ACCOUNT, key_file(server), server.token_uri)
    try:
        yield server
    finally:
        server.stop()


def key_file(server: GoogleServer) -> Path:
    assert server.ca_file is not None
    return server.ca_file.with_name("google-key.json")


def google_settings(server: GoogleServer, **changes: object) -> GoogleBackendSettings:
    base = GoogleBackendSettings(user=PROGRAMME, key_file=key_file(server), api_base=server.base, ca_file=server.ca_file,
                                 state_path=key_file(server).with_name("google-state.json"), retry_budget_seconds=30)
    return replace(base, **changes)  # type: ignore[arg-type]


def google_backend(server: GoogleServer, *, sleep: Callable[[float], None] | None = None,
                   monotonic: Callable[[], float] = time.monotonic, **changes: object) -> GoogleBackend:
    """A backend pointed at ``server``; waits (back-off, pacing) go to ``sleep``, never really slept.
    With ``service_account`` it is keyless (``workload_identity`` first)."""
    settings = google_settings(server, **changes)
    return GoogleBackend(settings, None if settings.service_account else key_file(server).read_text(),
                         sleep=sleep or (lambda seconds: None), monotonic=monotonic)


def keyless_settings(server: GoogleServer) -> dict[str, object]:
    """The ``[backend.google]`` keys of the keyless route, pointed at ``server``."""
    return {"key_file": None, "service_account": KEYLESS, "oauth_base": server.base, "iam_base": server.base}


def workload_identity(server: GoogleServer, monkeypatch: pytest.MonkeyPatch, *, creator: bool = True) -> Path:
    """The daemon's own identity as a Kubernetes workload federated into Google: a projected
    token file, a workload identity federation config (what ``gcloud iam workload-identity-pools
    create-cred-config`` writes) named by GOOGLE_APPLICATION_CREDENTIALS, the pool trusting the
    token, and (``creator``) Service Account Token Creator on the keyless account. Returns the config."""
    server.control.add_keyless_account(KEYLESS)
    folder = key_file(server).parent
    token = folder / "k8s-token"
    token.write_text("eyJrubernetes.projected.token")
    server.control.federate(POOL, token.read_text(), WORKLOAD)
    if creator:
        server.control.grant_token_creator(KEYLESS, WORKLOAD)
    config = folder / "wif-config.json"
    config.write_text(json.dumps({"type": "external_account", "audience": POOL,
                                  "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                                  "token_url": server.sts_uri, "credential_source": {"file": str(token)}}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "rm-test")  # else google-auth asks Resource Manager for it
    return config
