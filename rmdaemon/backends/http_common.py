"""What the HTTP backends (graph, google) share: a request description, the "outcome unknown"
error, a session that ignores the environment, waiting out throttling within a budget, and
pacing sends.

Both clouds throttle the same way from our side: a refusal (429, Google's 403
``rateLimitExceeded``) is always safe to repeat, after the ``Retry-After`` the service names or a
growing pause; a 5xx or a lost connection is repeated only for requests whose repetition is
harmless, otherwise the caller learns ``Unsure`` and looks before doing it again. A wait that
would go past the retry budget is not sat out: the work fails as temporary and the next tick
offers it again, so one throttled tick never blocks the daemon for minutes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from rmdaemon.errors import BackendError


@dataclass(frozen=True)
class Call:
    """One request: ``path`` below the service's root (``/users/x/events``), or an absolute URL."""

    method: str
    path: str
    body: Any = None  # dict → JSON; bytes/str → sent as is
    headers: Mapping[str, str] = field(default_factory=dict)
    safe_to_repeat: bool = True  # False for sends: never repeated after an unknown outcome


class Unsure(BackendError):
    """A request that must not be repeated blindly may or may not have been carried out."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False)


def tls_error(where: str, exc: Exception, what: str = "") -> BackendError:
    """A TLS failure (``ca_file`` does not hold the CA of the server or of a TLS-inspecting proxy):
    the same for every request and the admin's to fix, so the work waits instead of being refused."""
    prefix = f"{what}: " if what else ""
    return BackendError(f"{prefix}TLS error talking to {where}: {exc}", setup=True)


class TimeoutSession(requests.Session):
    """A session that never waits forever and ignores the environment (proxies, CA bundles):
    otherwise ``REQUESTS_CA_BUNDLE`` or a proxy variable silently overrides the configured CA."""

    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = verify
        self.timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """Seconds the service asks us to wait (``Retry-After`` in seconds), or ``default``."""
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


@dataclass
class Patience:
    """Waits out throttling, all waits of one piece of work counted against ``budget`` seconds."""

    service: str
    budget: float
    sleep: Callable[[float], None]
    waited: float = 0.0

    def wait(self, seconds: float, what: str, why: str) -> None:
        if self.waited + seconds > self.budget:
            raise BackendError(f"{what}: {why}; {self.service} asks to wait {seconds:g}s more than the retry budget "
                               f"({self.budget:g}s) allows; retrying next tick")
        self.sleep(seconds)
        self.waited += seconds


class SendPace:
    """Never more than ``per_minute`` sends in any 60 seconds, without waiting while under it.

    A classic token bucket (capacity 30, refilled 30 a minute) lets 60 messages through in one
    minute after an idle spell; Exchange Online counts sends per minute per mailbox and Gmail
    per user, so this keeps the times of the last sends and waits until the oldest is a minute
    old (a sliding window). A wait longer than the retry budget is not sat out: the send fails as
    temporary and the jobs offer it again next tick, so one busy tick never blocks the daemon for
    minutes. ``limit`` names where the number comes from, for the log.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float], sleep: Callable[[float], None], budget: float,
                 limit: str) -> None:
        self.per_minute, self.clock, self.sleep, self.budget, self.limit = per_minute, clock, sleep, budget, limit
        self.sent: deque[float] = deque()

    def take(self) -> None:
        now = self.clock()
        while self.sent and self.sent[0] <= now - 60:
            self.sent.popleft()
        if len(self.sent) >= self.per_minute:
            wait = self.sent[0] + 60 - now
            if wait > self.budget:
                raise BackendError(f"{self.per_minute} messages sent in the last minute ({self.limit}); "
                                   f"this one goes next tick")
            self.sleep(wait)
            now += wait
            self.sent.popleft()
        self.sent.append(now)
