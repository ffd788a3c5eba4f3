"""The mentor's private check-in: at the midpoint, on HELP, or when the champion asks. Only the
junior mentor gets it (the power gap runs one way); its replies reach the champion alone."""

from __future__ import annotations

from rmdaemon import compose
from rmdaemon.model import Outgoing, Pair
from rmdaemon.programme.messages import Mailer


def checkin(mail: Mailer, pair: Pair, reason: str, key: str | None) -> tuple[Outgoing, dict]:
    """To the mentor only: never addressed or copied to the mentee. ``key``: the pair's token key."""
    token = compose.thread_token(key, "checkin", pair.pair_id, reason)
    session = {"token": token, "pair_id": pair.pair_id, "kind": "checkin", "start": None,
               "person": pair.mentor.address, "milestone": reason}
    out = mail.email("checkin", key=f"checkin:{pair.pair_id}:{reason}", to=pair.mentor,
                     context={"pair": pair, "person": pair.mentor, "other": pair.mentee},
                     kind="checkin", pair_id=pair.pair_id, token=token)
    return out, session
