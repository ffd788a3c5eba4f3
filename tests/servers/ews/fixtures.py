"""pytest fixtures for the EWS test server.

Load with ``pytest_plugins = ["tests.servers.ews.fixtures"]`` in ``tests/conftest.py``. Tests that
use ``ews_server`` are skipped (with the reason) when ``../shared/ews-schema`` is missing, because
the point of the server is that every request is checked against Microsoft's schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.ews.schema import EwsSchema, load_schema, schema_dir
from tests.servers.ews.server import EwsServer

SERVICE_USER = ("svc-rmdaemon", "s3cret-Passw0rd")
PROGRAMME = "mentoring@corp.example"


@pytest.fixture(scope="session")
def ews_schema() -> EwsSchema:
    schema = load_schema()
    if schema is None:
        pytest.skip(f"EWS schemas not found at {schema_dir()}: exchange tests need ../shared/ews-schema beside the checkout")
    return schema


VALIDATED = pytest.StashKey[list[int]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """The suite reports how many requests exchangelib sent that passed Microsoft's schema."""
    validated, invalid = config.stash.get(VALIDATED, [0, 0])
    if validated or invalid:
        terminalreporter.write_line(f"EWS test server: {validated} requests valid against the EWS schema, {invalid} invalid")


@pytest.fixture
def ews_server(ews_schema: EwsSchema, request: pytest.FixtureRequest) -> Iterator[EwsServer]:
    """A running fake Exchange with a service account (impersonation + full access to the
    programme mailbox). Fails the test if any request it received was not schema-valid."""
    import exchangelib

    server = EwsServer(ews_schema)
    server.control.add_mailbox(PROGRAMME, "Reverse Mentoring")
    server.control.add_account(*SERVICE_USER, "svc-rmdaemon@corp.example", impersonation=True, delegate_for=[PROGRAMME])
    server.start()
    try:
        yield server
    finally:
        exchangelib.close_connections()
        server.stop()
        totals = request.config.stash.setdefault(VALIDATED, [0, 0])
        totals[0] += server.validated
        totals[1] += len(server.invalid) - server.expected_invalid
    assert len(server.invalid) == server.expected_invalid, "requests failed the EWS schema:\n" + "\n".join(server.invalid)
