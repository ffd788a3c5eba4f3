"""Shared test setup: tests import their helpers (``programme``, ``contract``) from this folder."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prerequisites import MISSING, PrerequisiteMissing, skip_summary  # noqa: E402  (after the path)

# The EWS test server's fixtures, and its end-of-run word on schema validation.
pytest_plugins = ["tests.servers.ews.fixtures"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """One line on what did not run and why, so a green run never hides a skipped check."""
    reasons = [_skip_reason(report) for report in terminalreporter.stats.get("skipped", [])]
    if reasons:
        terminalreporter.write_line(skip_summary(reasons))
    unchecked = [w.message for w in terminalreporter.stats.get("warnings", [])
                 if PrerequisiteMissing.__name__ in w.message]
    if unchecked:
        names = sorted({m.split(PrerequisiteMissing.__name__ + ": ")[-1].split(MISSING)[0] for m in unchecked})
        terminalreporter.write_line(f"checks not run in {len(unchecked)} tests: {', '.join(names)} missing")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")
