"""One measured tick in a fresh process (so peak RSS is this tick's own): used by bench/run.py.

    python bench/tick.py CONFIG NOW

Prints one JSON line: wall seconds, peak RSS in MB, bytes and writes to the state file, its size.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from rmdaemon import daemon
from rmdaemon.backends.factory import open_backend
from rmdaemon.clock import fixed_clock, parse_now
from rmdaemon.config import load_settings
from rmdaemon.store import Store


def main(config: str, now_text: str) -> None:
    settings = load_settings(Path(config))
    now = parse_now(now_text)
    started = time.perf_counter()
    with Store.open(settings.storage_path) as store:
        backend = open_backend(settings, fixed_clock(now))
        results = daemon.tick(store, backend, settings, now, only_due=False)
        backend.close()
        written, writes = store.bytes_written, store.writes
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = {r.name: r.counts for r in results if r.counts}
    print(json.dumps({"wall": wall, "rss_mb": peak, "bytes_written": written, "writes": writes,
                      "file_size": settings.storage_path.stat().st_size, "counts": counts}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
