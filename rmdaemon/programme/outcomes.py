"""What the programme changed: goal progress at the midpoint and the end, survey answers before
and after (mentees' and mentors' apart: the mentor's own confidence and visibility are an outcome
of their own), and the tools or practices mentees say they adopted.

The article's measurable outcomes ("Was a new tool adopted? Use surveys to gauge cultural
shifts"). The same privacy rules as ``metrics``: every figure is over at least
``[privacy] min_group_size`` people or has no value; the adopted tools' words come only from
pairs whose two people both said SHARE NOTES, and only when those are enough people.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rmdaemon.compose import Question
from rmdaemon.programme.metrics import (Distribution, Member, Period, Score, Snapshot, SurveyScore, distribution,
                                        score, survey_scores)
from rmdaemon.programme.sessions import planned_rows, total
from rmdaemon.programme.series import milestone_sessions

ROLES = ("mentee", "mentor")
ADOPTED = "adopted"  # the survey question (``templates/surveys.toml``) that names a tool or practice
NOTHING = {"", "-", "no", "none", "nothing", "nothing yet", "not yet", "n/a", "na", "nope"}
TOP = 5  # most frequent tools or practices listed


@dataclass(frozen=True)
class ProgressAt:
    """Goal progress (1-5) at one milestone: each person's answer there, as a distribution and a mean."""

    milestone: str  # midpoint | end
    counts: Distribution
    mean: Score


@dataclass(frozen=True)
class Adopted:
    """Mentees who named a tool or practice they adopted (midpoint or end survey)."""

    answered: int  # mentees who answered that question at all
    named: int  # of them, how many named something
    floor: int
    top: tuple[tuple[str, int], ...] | None  # (words, people) from sharing pairs; None: too few of them
    sharing: int  # mentees of sharing pairs who named something

    @property
    def suppressed(self) -> bool:
        return 0 < self.answered < self.floor

    @property
    def share(self) -> float | None:
        return self.named / self.answered if self.answered >= self.floor and self.answered else None


@dataclass(frozen=True)
class Outcomes:
    progress: tuple[ProgressAt, ...]  # midpoint, end
    surveys: dict[str, tuple[SurveyScore, ...]]  # role → its questions
    adopted: Adopted


def _milestone_of(snap: Snapshot) -> dict[str, str]:
    """Session token → "midpoint" or "end": which goal-progress question its agenda asked
    (``series.progress_sessions``: the middle session and the last)."""
    out: dict[str, str] = {}
    numbers = {s["token"]: (s["pair_id"], s["number"]) for s in snap.sessions}
    last: dict[str, int] = {}
    for pid, number in numbers.values():
        last[pid] = max(last.get(pid, 0), number)
    ends = {pid: milestone_sessions(total(planned_rows(doc)) or last.get(pid, 0)) for pid, doc in snap.pairs.items()}
    for token, (pid, number) in numbers.items():
        marks = ends.get(pid, {})
        out[token] = "end" if number >= marks.get("end", number + 1) else "midpoint"
    return out


def goal_progress(snap: Snapshot, period: Period, floor: int) -> tuple[ProgressAt, ...]:
    """Each person's latest answer at each milestone, over the period."""
    which = _milestone_of(snap)
    answers: dict[str, dict[str, int]] = {"midpoint": {}, "end": {}}
    for log in sorted(snap.logs, key=lambda log: log.received):
        value = log.field("progress")
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5 and log.session_start in period:
            answers[which.get(log.token, "midpoint")][log.sender] = value
    return tuple(ProgressAt(m, distribution(list(a.items()), floor), score(list(a.items()), floor))
                 for m, a in answers.items())


def surveys_by_role(snap: Snapshot, period: Period, floor: int,
                    questions: Sequence[Question]) -> dict[str, tuple[SurveyScore, ...]]:
    """Mentees' answers and mentors' answers, each per question they were asked."""
    out = {}
    for role in ROLES:
        rows = [r for r in snap.surveys if r.get("role") == role]
        asked = [q for q in questions if role in q.roles]
        out[role] = survey_scores(rows, period, floor, asked)
    return out


def _items(text: str) -> list[str]:
    """"Notion, the async stand-up; Loom" → ["notion", "the async stand-up", "loom"]."""
    parts = re.split(r"[,;\n]|\band\b", text.casefold())
    return [" ".join(p.strip(" .!-*•\t").split()) for p in parts if p.strip(" .!-*•\t") not in NOTHING]


def adopted(snap: Snapshot, everyone: Sequence[Member], period: Period, floor: int) -> Adopted:
    """Each mentee's latest answer to the adopted question; words only from sharing pairs."""
    latest: dict[str, tuple[str, str]] = {}  # mentee address → (pair id, answer)
    for row in sorted(snap.surveys, key=lambda r: r.get("received") or ""):
        value = (row.get("answers") or {}).get(ADOPTED)
        if row.get("role") == "mentee" and isinstance(value, str) and row.get("received") in period:
            latest[row["from"]] = (row["pair_id"], value)
    named = {who: (pid, _items(text)) for who, (pid, text) in latest.items() if _items(text)}
    sharing = {m.pair_id for m in everyone if m.shares_notes}
    words = [items for pid, items in named.values() if pid in sharing]
    top = None
    if len(words) >= floor:
        counted = Counter(item for items in words for item in set(items))
        top = tuple(counted.most_common(TOP))
    return Adopted(len(latest), len(named), floor, top, len(words))


def outcomes(snap: Snapshot, everyone: Sequence[Member], period: Period, floor: int,
             questions: Sequence[Question] = ()) -> Outcomes:
    return Outcomes(goal_progress(snap, period, floor), surveys_by_role(snap, period, floor, questions),
                    adopted(snap, everyone, period, floor))


def hidden(found: Outcomes) -> Iterable[str]:
    """The names of the outcomes kept back for too few people (for the report's one notice)."""
    for p in found.progress:
        if p.counts.suppressed:
            yield f"goal progress at the {p.milestone}"
    for role, scores in found.surveys.items():
        if any(v.suppressed for s in scores for v in s.by_milestone.values()):
            yield f"{role}s' survey answers"
    if found.adopted.suppressed:
        yield "tools and practices adopted"
    elif found.adopted.named and found.adopted.top is None:
        yield "the words of the tools and practices adopted (too few from pairs who share their notes)"
