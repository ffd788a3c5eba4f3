"""The Exchange backend passes the backend contract, over HTTP against the EWS test server."""

from __future__ import annotations

from datetime import datetime

import pytest

from contract import BackendContract
from rmdaemon.backends.exchange import ExchangeBackend
from rmdaemon.config import ExchangeBackendSettings
from rmdaemon.model import WorkingHours
from tests.servers.ews.fixtures import ews_schema, ews_server  # noqa: F401  (fixtures)
from tests.servers.ews.server import EwsServer
from tests.servers.ews.store import Hours

PROGRAMME = "mentoring@example.com"
USER = ("svc-contract", "contract-Passw0rd")


class ExchangeHarness:
    def __init__(self, server: EwsServer) -> None:
        self.server = server
        for address in (PROGRAMME, "alex@example.com", "sam@example.com"):
            server.control.add_mailbox(address)
        server.control.add_account(*USER, "svc-contract@example.com", delegate_for=[PROGRAMME])
        self.backend = self.reopen()

    def reopen(self) -> ExchangeBackend:
        settings = ExchangeBackendSettings(service_endpoint=self.server.url, mailbox=PROGRAMME, auth="basic", username=USER[0],
                                    password_env="RMDAEMON_EWS_PASSWORD", retry_budget_seconds=2)  # fmt: skip
        return ExchangeBackend(settings, secret=USER[1])

    def deliver(self, raw: bytes) -> None:
        self.server.control.inject_message(PROGRAMME, raw)

    def received(self, address: str) -> list[bytes]:
        return [item.mime for item in self.server.control.items(address, "inbox") if item.mime is not None]

    def script_busy(self, address: str, start: datetime, end: datetime) -> None:
        self.server.control.script_busy(address, start, end)

    def keep_hours(self, address: str, hours: WorkingHours, zone: str) -> None:
        minutes = [t.hour * 60 + t.minute for t in (hours.start, hours.end)]
        self.server.control.set_working_hours(address, Hours(zone, *minutes, hours.days))


class TestExchangeBackend(BackendContract):
    @pytest.fixture
    def harness(self, ews_server: EwsServer) -> ExchangeHarness:
        return ExchangeHarness(ews_server)
