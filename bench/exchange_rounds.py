"""Exchange round trips, from the EWS test server's own request log: the real jobs run through the
CLI against it at 100 and 1,000 pairs, by two tests that print what the server counted —
booking (tests/test_exchange_programme.py) and mail: the first tick's kickoffs and the agenda tick
(tests/test_exchange_mail.py). Nothing here is a figure of its own: every number is parsed from them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = ("tests/test_exchange_programme.py::test_booking_through_the_jobs_costs_at_most_five_requests_per_100_pairs",
         "tests/test_exchange_mail.py::test_kickoffs_and_agendas_through_the_jobs_cost_few_requests_per_100_pairs")
BOOKING = re.compile(r"(\d+) pairs booked through the jobs: ([\d.]+) requests per 100 pairs")
KICKOFFS = re.compile(r"(\d+) pairs, kickoff mails: ([\d.]+) requests per 100 pairs")
AGENDAS = re.compile(r"(\d+) pairs, agenda tick: ([\d.]+) requests per 100 pairs, mail ([\d.]+) of them")


def measure() -> dict:
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *TESTS],
                         cwd=REPO, capture_output=True, text=True, env=dict(os.environ, RMDAEMON_BENCH="1"), check=False)
    return figures(out.stdout) or {"error": (out.stdout + out.stderr)[-500:]}


def figures(text: str) -> dict:
    """The tests' lines as bench figures, requests per 100 pairs, by programme size."""
    found: dict[str, float] = {}
    for m in BOOKING.finditer(text):
        found[f"booking {m[1]} pairs: requests per 100 pairs"] = float(m[2])
    for m in KICKOFFS.finditer(text):
        found[f"kickoff mails {m[1]} pairs: requests per 100 pairs"] = float(m[2])
    for m in AGENDAS.finditer(text):
        found[f"agenda tick {m[1]} pairs: requests per 100 pairs"] = float(m[2])
        found[f"agenda tick {m[1]} pairs: of them mail"] = float(m[3])
    return found


if __name__ == "__main__":
    print(measure())
