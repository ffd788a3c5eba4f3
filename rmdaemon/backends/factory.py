"""Settings → the configured backend. The only place that knows every backend by name."""

from __future__ import annotations

from rmdaemon.backends.base import Backend
from rmdaemon.backends.local import LocalBackend
from rmdaemon.clock import Clock
from rmdaemon.config import Settings
from rmdaemon.errors import UserError


def open_backend(settings: Settings, clock: Clock) -> Backend:
    kind = settings.backend.kind
    if kind == "local":
        return LocalBackend(settings.backend.local.outbox, settings.backend.local.inbox, clock)
    raise UserError(f"{settings.config_path}: [backend] kind = {kind!r} is not available in this version; use 'local'")
