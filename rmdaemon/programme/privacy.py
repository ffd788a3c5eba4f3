"""Whose notes are whose: consent to share belongs to a person (an address), not to a roster
slot, and what a pair wrote stays with the two people who wrote it.

When the roster replaces a participant, the pair keeps its id but not its past: the new person
has not said SHARE NOTES, and the notes and next steps written before they joined are never
shown to them (nor to the champion under their name).
"""

from __future__ import annotations

from collections.abc import Mapping

from rmdaemon.model import Pair
from rmdaemon.records import Log


def people_of(pair: Pair) -> list[str]:
    """The pair's two addresses, sorted: what a log row records as the people it belongs to."""
    return sorted(p.address for p in pair.people)


def belongs_to(log: Log, pair: Pair) -> bool:
    """A log written while these two people were the pair. Rows written before logs recorded
    their people (``people`` absent) are taken as the current pair's."""
    return sorted(log.people or people_of(pair)) == people_of(pair)


def shares_notes(pair: Pair | None, chosen: Mapping[str, bool] | None) -> bool:
    """Both current people said SHARE NOTES (and neither PRIVATE since); an earlier participant's
    yes does not count for the person who replaced them. ``chosen``: the pair's ``share_notes``."""
    chosen = chosen or {}
    return pair is not None and all(chosen.get(p.address) is True for p in pair.people)
