"""google-state.json: the graph backend's journal (``GraphState``: series, creates in flight, the
send journal, the inbox cursor and pending messages), with the inbox cursor holding Gmail's
``historyId`` — plus what only this backend keeps: the agendas written into occurrences (a digest
per session, and the ones in flight, looked at before writing again), the series' Google Meet
links, the processed label's id, and the calendar's ``nextSyncToken`` with the answers read so far
(``google_answers``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rmdaemon.backends.graph_state import GraphState, digest


def _session(uid: str, start: datetime) -> str:
    return digest(f"{uid} {start.astimezone(timezone.utc).isoformat()}")


class GoogleState(GraphState):
    owner = "google backend"
    recovery = ("the inbox is then listed again (handled messages carry the processed label and are skipped) and "
                "series are found again by their iCalUID")

    def empty(self) -> dict[str, Any]:
        return {**super().empty(), "notes": {}, "noting": {}, "label": None, "meet": {},
                "answers": {"sync_token": None, "events": {}}}

    def meet(self, uid: str) -> str | None:
        """The Google Meet link of a series, when it has one."""
        return self.data["meet"].get(uid)

    def meet_links(self, links: dict[str, str]) -> None:
        if links:
            self.data["meet"].update(links)
            self.save()

    def noted(self, uid: str, start: datetime, text: str) -> bool:
        return self.data["notes"].get(_session(uid, start)) == digest(text)

    def noting(self, uid: str, start: datetime) -> bool:
        return _session(uid, start) in self.data["noting"]

    def start_notes(self, sessions: list[tuple[str, datetime]]) -> None:
        if sessions:
            self.data["noting"].update({_session(u, s): 0 for u, s in sessions})
            self.save()

    def notes_done(self, done: list[tuple[str, datetime, str]]) -> None:
        for uid, start, text in done:
            self.data["notes"][_session(uid, start)] = digest(text)
            self.data["noting"].pop(_session(uid, start), None)
        if done:
            self.save()

    @property
    def label(self) -> str | None:
        return self.data["label"]

    def set_label(self, ident: str) -> None:
        self.data["label"] = ident
        self.save()
