"""Google round trips, from the fake Workspace's own request log: the real jobs run through the CLI
against it at 100 pairs by one test that prints what the server counted — booking, the first
tick's kickoffs and the agenda tick (tests/test_google_programme.py). Every number is parsed from
it; the line shapes are the exchange bench's (``exchange_rounds``), so its parser reads them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from exchange_rounds import figures

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/test_google_programme.py::test_booking_kickoffs_and_the_agenda_tick_through_the_jobs_cost_few_round_trips"


def measure() -> dict:
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TEST],
                         cwd=REPO, capture_output=True, text=True, env=dict(os.environ), check=False)
    return figures(out.stdout.replace(" on Google", "")) or {"error": (out.stdout + out.stderr)[-500:]}


if __name__ == "__main__":
    print(measure())
