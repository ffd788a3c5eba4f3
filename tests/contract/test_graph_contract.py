"""The Graph backend passes the backend contract, over HTTPS against the Graph test server."""

from __future__ import annotations

from datetime import datetime

import pytest

from contract import BackendContract
from rmdaemon.backends.graph import GraphBackend
from rmdaemon.model import WorkingHours
from tests.servers.graph.fixtures import PROGRAMME, graph_backend, graph_server  # noqa: F401  (fixtures)
from tests.servers.graph.server import GraphServer
from tests.servers.graph.store import Hours

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class GraphHarness:
    def __init__(self, server: GraphServer) -> None:
        self.server = server
        for address in ("alex@example.com", "sam@example.com"):
            server.control.add_mailbox(address)
        self.state = server.ca_file.with_name("graph-state.json")  # type: ignore[union-attr]
        self.backend = self.reopen()

    def reopen(self, online: bool = False) -> GraphBackend:
        """A restarted daemon: a new backend on the same journal file."""
        return graph_backend(self.server, state_path=self.state, online_meetings=online)

    def forget(self) -> None:
        self.state.unlink(missing_ok=True)

    def deliver(self, raw: bytes) -> None:
        self.server.control.deliver(PROGRAMME, raw)

    def received(self, address: str) -> list[bytes]:
        return self.server.control.received(address)

    def script_busy(self, address: str, start: datetime, end: datetime) -> None:
        self.server.control.script_busy(address, start, end)

    def keep_hours(self, address: str, hours: WorkingHours, zone: str) -> None:
        start, end = (f"{t:%H:%M:%S}.0000000" for t in (hours.start, hours.end))
        self.server.control.set_working_hours(address, Hours(zone, start, end, tuple(DAYS[d] for d in hours.days)))


class TestGraphBackend(BackendContract):
    @pytest.fixture
    def harness(self, graph_server: GraphServer) -> GraphHarness:
        return GraphHarness(graph_server)
