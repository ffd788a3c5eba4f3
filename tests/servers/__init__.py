"""Protocol-level test servers the suite runs on 127.0.0.1 (EWS, Graph, Google, IMAP, SMTP), and
the fake clock the HTTP ones and their clients share, so waits are recorded, never spent."""

from __future__ import annotations


class FakeTime:
    """A monotonic clock that only moves when something sleeps: waits are recorded, not spent."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
