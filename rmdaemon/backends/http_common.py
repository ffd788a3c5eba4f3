"""What the HTTP backends (graph, google) share: a request description, the "outcome unknown"
error, a session that ignores the environment, and waiting out throttling within a budget.

Both clouds throttle the same way from our side: a refusal (429, Google's 403
``rateLimitExceeded``) is always safe to repeat, after the ``Retry-After`` the service names or a
growing pause; a 5xx or a lost connection is repeated only for requests whose repetition is
harmless, otherwise the caller learns ``Unsure`` and looks before doing it again. A wait that
would go past the retry budget is not sat out: the work fails as temporary and the next tick
offers it again, so one throttled tick never blocks the daemon for minutes.
"""

from __future__ import annotations

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
