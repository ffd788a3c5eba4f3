"""The Graph backend passes the backend contract, over HTTPS against the Graph test server."""

from __future__ import annotations

import pytest

from contract import BackendContract
from rmdaemon.backends.graph import GraphBackend
from tests.servers.graph.fixtures import PROGRAMME, graph_backend, graph_server  # noqa: F401  (fixtures)
from tests.servers.graph.server import GraphServer


class GraphHarness:
    def __init__(self, server: GraphServer) -> None:
        self.server = server
        for address in ("alex@example.com", "sam@example.com"):
            server.control.add_mailbox(address)
        self.state = server.ca_file.with_name("graph-state.json")  # type: ignore[union-attr]
        self.backend = self.reopen()

    def reopen(self) -> GraphBackend:
        """A restarted daemon: a new backend on the same journal file."""
        return graph_backend(self.server, state_path=self.state)

    def deliver(self, raw: bytes) -> None:
        self.server.control.deliver(PROGRAMME, raw)

    def received(self, address: str) -> list[bytes]:
        return self.server.control.received(address)


class TestGraphBackend(BackendContract):
    @pytest.fixture
    def harness(self, graph_server: GraphServer) -> GraphHarness:
        return GraphHarness(graph_server)
