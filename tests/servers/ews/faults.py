"""Scripted failures: the next N requests (optionally of one operation) fail in a chosen way.

Kinds, each what a real Exchange or its load balancer does under stress:
``busy`` (SOAP fault ErrorServerBusy with BackOffMilliseconds), ``http500`` (IIS error page),
``http503``, ``drop`` (connection closed without an answer), ``slow`` (answer after a delay).
And ``hold``: the request is carried out, then its answer waits until the test releases it — the
moment to kill a client that has been served but has not heard back (a crash between "Exchange
did it" and "the client recorded it"). ``lost``: the request is carried out, then the connection
closes without an answer (a load balancer giving up on a slow batch that Exchange finished).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

KINDS = ("busy", "http500", "http503", "drop", "slow", "hold", "lost")


@dataclass
class Fault:
    kind: str
    operation: str | None = None  # None: any operation
    back_off_ms: int = 100  # for busy
    delay_seconds: float = 0.0  # for slow
    contains: bytes = b""  # only requests whose body has these bytes (e.g. b"CalendarItem")
    reached: threading.Event = field(default_factory=threading.Event)  # hold: the request was carried out
    released: threading.Event = field(default_factory=threading.Event)  # hold: the test lets the answer go


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

    def take(self, operation: str, body: bytes = b"") -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._pending):
                if fault.operation in (None, operation) and fault.contains in body:
                    del self._pending[index]
                    self.fired.append((fault.kind, operation))
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
