"""pytest fixtures: a started fake Workspace with the programme user and a service account whose
key file points its ``token_uri`` at the server; and a backend built against it."""

from __future__ import annotations

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
    """A backend pointed at ``server``; waits (back-off, pacing) go to ``sleep``, never really slept."""
    return GoogleBackend(google_settings(server, **changes), key_file(server).read_text(),
                         sleep=sleep or (lambda seconds: None), monotonic=monotonic)
