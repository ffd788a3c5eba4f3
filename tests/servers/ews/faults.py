"""Scripted failures: the next N requests (optionally of one operation) fail in a chosen way.

Kinds, each what a real Exchange or its load balancer does under stress:
``busy`` (SOAP fault ErrorServerBusy with BackOffMilliseconds), ``http500`` (IIS error page),
``http503``, ``drop`` (connection closed without an answer), ``slow`` (answer after a delay).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

KINDS = ("busy", "http500", "http503", "drop", "slow")


@dataclass
class Fault:
    kind: str
    operation: str | None = None  # None: any operation
    back_off_ms: int = 100  # for busy
    delay_seconds: float = 0.0  # for slow


class FaultPlan:
    """A queue of pending faults; each request takes the first one that matches its operation."""

    def __init__(self) -> None:
        self._pending: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: list[tuple[str, str]] = []  # (kind, operation), for assertions

    def add(self, fault: Fault, times: int = 1) -> None:
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {KINDS}")
        with self._lock:
            self._pending.extend([fault] * times)

    def take(self, operation: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._pending):
                if fault.operation in (None, operation):
                    del self._pending[index]
                    self.fired.append((fault.kind, operation))
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
