"""pytest fixtures for the Graph test server: a tenant, an app granted through RBAC for Applications
to the programme mailbox only, and the settings a backend needs to reach it over TLS.

Import them into a test module (``from tests.servers.graph.fixtures import graph_server``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rmdaemon.backends.base import DEFAULT_MAX_BYTES
from rmdaemon.backends.graph import GraphBackend
from rmdaemon.config import GraphBackendSettings
from rmdaemon.backends.graph_auth import Credential
from tests.servers.graph.server import GraphServer

TENANT = "7d9a5c1e-2b4f-4e8a-9c3d-1f2e3a4b5c6d"
CLIENT_ID = "0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5"
SECRET = "graph~Secret.Value-0123456789"
PROGRAMME = "mentoring@example.com"


@pytest.fixture
def graph_server(tmp_path: Path) -> Iterator[GraphServer]:
    server = GraphServer()
    server.start(tmp_path / "graph-test-ca.pem")
    server.control.add_mailbox(PROGRAMME, "Reverse Mentoring")
    server.control.add_app(CLIENT_ID, TENANT, secret=SECRET)
    server.control.scope(CLIENT_ID, [PROGRAMME])
    try:
        yield server
    finally:
        server.stop()


def graph_settings(server: GraphServer, **changes: object) -> GraphBackendSettings:
    base = GraphBackendSettings(tenant_id=TENANT, client_id=CLIENT_ID, mailbox=PROGRAMME, authority_host=server.base,
                         graph_base=server.base, ca_file=server.ca_file, retry_budget_seconds=5)
    return replace(base, **changes)  # type: ignore[arg-type]


def graph_backend(server: GraphServer, secret: str = SECRET, *, credential: Credential | None = None,
                  sleep: Callable[[float], None] | None = None, monotonic: Callable[[], float] | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES, **changes: object) -> GraphBackend:
    """A backend pointed at ``server``; waits (Retry-After, pacing) go to ``sleep``, never really slept."""
    return GraphBackend(graph_settings(server, **changes), credential or Credential(secret=secret),
                        sleep=sleep or (lambda seconds: None), monotonic=monotonic or time.monotonic, max_bytes=max_bytes)
