"""The local Maildir backend passes the backend contract."""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from contract import BackendContract, calendar_of
from rmdaemon.backends.local import LocalBackend
from rmdaemon.clock import fixed_clock

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)


class LocalHarness:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.backend = self.reopen()

    def reopen(self) -> LocalBackend:
        return LocalBackend(self.root / "outbox", self.root / "inbox", fixed_clock(NOW))

    def deliver(self, raw: bytes) -> None:
        (self.root / "inbox" / "new").mkdir(parents=True, exist_ok=True)
        n = len(list((self.root / "inbox" / "new").iterdir()))
        (self.root / "inbox" / "new" / f"drop-{n}.eml").write_bytes(raw)

    def read_delivered(self) -> None:
        """A mail client reads the outbox: each message moves from new/ to cur/ with its flags."""
        for path in (self.root / "outbox" / "new").iterdir():
            path.rename(self.root / "outbox" / "cur" / f"{path.name}:2,S")

    def received(self, address: str) -> list[bytes]:
        """What ``address`` was sent, oldest first. A Maildir records no order but the files' mtimes,
        and files written within one tick of the filesystem's clock (a few milliseconds: several
        invitations) share one; a relay may then send them in any order, and a calendar client
        applies updates of one event by their SEQUENCE, so ties are broken by it, as it would."""
        files = [p for box in ("new", "cur") for p in (self.root / "outbox" / box).glob("*.eml*")]
        raws = sorted(((p.stat().st_mtime_ns, _sequence(raw := p.read_bytes()), p.name), raw) for p in files)
        return [r for _, r in raws if address in str(message_from_bytes(r, policy=policy.default)["To"])]


def _sequence(raw: bytes) -> int:
    """The SEQUENCE of the message's calendar (-1 when it carries none)."""
    cal = calendar_of(raw)
    return -1 if cal is None else int(next(iter(cal.walk("VEVENT"))).get("SEQUENCE", 0))


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def harness(self, tmp_path):
        return LocalHarness(tmp_path)
