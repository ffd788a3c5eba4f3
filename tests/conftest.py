"""Shared test setup: tests import their helpers (``programme``, ``contract``) from this folder."""

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prerequisites import MISSING, PrerequisiteMissing, skip_summary  # noqa: E402  (after the path)

# Property tests are the same on every run (``make test`` and CI never turn red by chance, and no
# example database carries a failure from one run into the next). HYPOTHESIS_PROFILE=explore
# draws new examples each run, to hunt for bugs on purpose.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

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
