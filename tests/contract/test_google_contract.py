"""The google backend passes the backend contract, over HTTPS against the fake Google Workspace."""

from __future__ import annotations

from datetime import datetime

import pytest

from contract import BackendContract
from rmdaemon.backends.google import GoogleBackend
from tests.servers.google.fixtures import PROGRAMME, google_backend, google_server, key_file  # noqa: F401  (fixtures)
from tests.servers.google.server import GoogleServer


class GoogleHarness:
    def __init__(self, server: GoogleServer) -> None:
        self.server = server
        for address in ("alex@example.com", "sam@example.com"):
            server.control.add_user(address)
        self.state = key_file(server).with_name("google-state.json")
        self.backend = self.reopen()

    def reopen(self, online: bool = False) -> GoogleBackend:
        """A restarted daemon: a new backend on the same journal file."""
        return google_backend(self.server, state_path=self.state, online_meetings=online)

    def forget(self) -> None:
        self.state.unlink(missing_ok=True)

    def deliver(self, raw: bytes) -> None:
        self.server.control.deliver(PROGRAMME, raw)

    def received(self, address: str) -> list[bytes]:
        return self.server.control.received(address)

    def script_busy(self, address: str, start: datetime, end: datetime) -> None:
        self.server.control.script_busy(address, start, end)


class TestGoogleBackend(BackendContract):
    @pytest.fixture
    def harness(self, google_server: GoogleServer) -> GoogleHarness:
        return GoogleHarness(google_server)
