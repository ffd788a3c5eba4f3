"""pytest fixtures for the EWS test server.

Load with ``pytest_plugins = ["tests.servers.ews.fixtures"]`` in ``tests/conftest.py``. With
Microsoft's schemas in ``../shared/ews-schema`` beside the checkout, every request is checked
against them as Exchange would; without them (a fresh clone) the server still answers, so every
Exchange test runs, and the end-of-run summary says which of the two happened. Under
``RMDAEMON_STRICT_TESTS`` (``.ci/run``) missing schemas fail the tests instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from prerequisites import EWS_SCHEMAS, missing, strict
from tests.servers.ews.schema import EwsSchema, load_schema, schema_dir
from tests.servers.ews.server import EwsServer

SERVICE_USER = ("svc-rmdaemon", "s3cret-Passw0rd")
PROGRAMME = "mentoring@corp.example"


def schema_or_none() -> EwsSchema | None:
    """The schemas when they are beside the checkout; None (answer unchecked) unless strict."""
    schema = load_schema()
    if schema is None and strict():
        missing(EWS_SCHEMAS)
    return schema


@pytest.fixture(scope="session")
def ews_schema() -> EwsSchema | None:
    return schema_or_none()


@pytest.fixture
def needs_ews_schema(ews_schema: EwsSchema | None) -> EwsSchema:
    """For the tests about validation itself: they skip (fail when strict) without the schemas."""
    if ews_schema is None:
        missing(EWS_SCHEMAS)
    return ews_schema


VALIDATED = pytest.StashKey[list[int]]()  # requests valid, invalid, answered unchecked


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Whether the Exchange tests' requests were checked against Microsoft's schema, and how many."""
    validated, invalid, unchecked = config.stash.get(VALIDATED, [0, 0, 0])
    if validated or invalid:
        terminalreporter.write_line(f"EWS test server: {validated} requests valid against the EWS schema, {invalid} invalid")
    if unchecked:
        terminalreporter.write_line(f"EWS test server: {unchecked} requests answered WITHOUT schema validation "
                                    f"(schemas not found at {schema_dir()}; {EWS_SCHEMAS.install})")


@pytest.fixture
def ews_server(ews_schema: EwsSchema | None, request: pytest.FixtureRequest) -> Iterator[EwsServer]:
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
        totals = request.config.stash.setdefault(VALIDATED, [0, 0, 0])
        totals[0] += server.validated
        totals[1] += len(server.invalid) - server.expected_invalid
        totals[2] += len(server.log) if ews_schema is None else 0
    assert len(server.invalid) == server.expected_invalid, "requests failed the EWS schema:\n" + "\n".join(server.invalid)
