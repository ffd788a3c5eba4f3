"""What each template may use: its variables, described once, with a sample context.

One source for three readers: ``rmdaemon check`` (a name a template uses that is not listed here
is a typo, reported with file, line and a did-you-mean; the template is then rendered with
StrictUndefined on the sample context, which catches a misspelt attribute such as
``person.frist_name``), docs/templates.md (``python -m rmdaemon.template_vars``, compared by a
test), and whoever writes a job (a new variable goes here first, or ``check`` rejects the shipped
template that uses it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from types import SimpleNamespace
from typing import Any

from rmdaemon.config import ProgramSettings
from rmdaemon.model import Pair, Person, WorkingHours
from rmdaemon.phrases import day, moment, phrase

PROGRAM = ("program", "the [program] settings: program.name, program.organizer_name, program.organizer, "
                      "program.champion, program.timezone, program.sessions, program.duration_minutes")
TOKEN = ("token", "the thread's token (e.g. RM-7F3K2Q); replies that keep it in the subject find their way back")
PAIR = ("pair", "the pair: pair.pair_id, pair.goal, pair.track, pair.cadence, pair.duration_minutes, "
                "pair.mentor and pair.mentee (people, as below)")
PERSON = ("person", "the recipient: person.name, person.first_name (how to greet them: the roster's preferred name "
                    "or one derived from the name, see Names below), person.email, person.timezone, "
                    "person.working_hours, person.language")
CHAMPION = ("person", "the recipient, the champion: person.first_name from [program] champion_name, "
                      "else 'programme champion'")
OTHER = ("other", "the other member of the pair (same fields as person)")
GOAL = ("goal", "the pair's goal as the pair last stated it (the roster's goal until then)")
SERIES = (("cadence_text", "the rhythm in words: 'every week', 'every two weeks', 'every month'"),
          ("sessions_text", "how many sessions or until when, in words"))


@dataclass(frozen=True)
class TemplateDoc:
    name: str  # the email's name: the files are name.txt and name.html (or the one file named)
    files: tuple[str, ...]
    purpose: str
    variables: tuple[tuple[str, str], ...]
    sample: Callable[[], dict[str, Any]] | None = None  # None: checked by names only (see docs)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(v for v, _ in self.variables)


def _email(name: str, purpose: str, *variables: tuple[str, str], sample: Callable[[], dict] | None = None,
           token: bool = True) -> TemplateDoc:
    """An email template pair; every email gets ``program``, and ``token`` when it has a thread."""
    common = (PROGRAM, TOKEN) if token else (PROGRAM,)
    return TemplateDoc(name, (f"{name}.txt", f"{name}.html"), purpose, common + variables, sample)


def sample_program() -> ProgramSettings:
    hours = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
    return ProgramSettings(
        name="Reverse Mentoring Pilot", timezone="Europe/London", cadence="biweekly", duration_minutes=45, sessions=6,
        end_date=None, start_date=date(2027, 1, 4), working_hours=hours, require_opt_in=True, agenda_lead_hours=24,
        organizer="mentoring@example.com", organizer_name="Reverse Mentoring Team", champion="champion@example.com",
        max_pairs_per_mentor=1)


def sample_pair() -> Pair:
    hours = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
    mentor = Person("Aisha Khan", "aisha.khan@example.com", "Europe/London", hours)
    mentee = Person("Richard Hale", "richard.hale@example.com", "America/New_York", hours)
    return Pair("P01", mentor, mentee, "Understand how younger customers discover products", "social media",
                "biweekly", 45, None, "active", row=2)


def sample_champion() -> Person:
    hours = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
    return Person("Hans Becker", "champion@example.com", "Europe/London", hours)


def _people(**extra: Any) -> Callable[[], dict]:
    """A sample for mail to one member of the pair, about the other."""
    def sample() -> dict:
        pair = sample_pair()
        return {"program": sample_program(), "token": "RM-7F3K2Q", "pair": pair, "person": pair.mentee,
                "other": pair.mentor, "goal": pair.goal, **extra}
    return sample


def _about_pair(**extra: Any) -> Callable[[], dict]:
    """A sample for mail about the pair (to the champion, or to both)."""
    return lambda: {"program": sample_program(), "token": "RM-7F3K2Q", "pair": sample_pair(), "goal": sample_pair().goal,
                    **extra}


def _survey_questions() -> list:
    from rmdaemon.compose import Question  # same layer; imported here, as compose imports this module

    return [Question("useful", "How useful was the programme so far?", "scale", ("mentor", "mentee"), ("first",)),
            Question("learned", "What did you learn?", "text", ("mentee",), ("first",))]


def _outside_hours() -> dict:
    """A sample refusal, as the code keeps it (rmdaemon/phrases.py)."""
    return phrase("refused.outside_hours", when=moment(datetime(2027, 1, 17, 3, 0, tzinfo=timezone.utc), "America/New_York"),
                  hours=[phrase("refused.works", name="Richard Hale", hours={"from": "09:00", "to": "17:00", "days": [0, 1, 2, 3, 4]})])


@dataclass(frozen=True)
class _Average:
    """A sample 1-5 average with the face the digest reads of ``metrics.Score``."""

    mean: float | None
    suppressed: bool = False

    def __str__(self) -> str:
        return "suppressed" if self.suppressed else "no data" if self.mean is None else f"{self.mean:.1f}"


def _figures(planned: int, held: int, rating: _Average, progress: _Average, stopped: int, paused: int) -> SimpleNamespace:
    return SimpleNamespace(sessions=SimpleNamespace(planned=planned, held=held, attendance=held / planned if planned else None),
                           rating=rating, progress=progress, stopped=stopped, paused=paused, quarantined=0)


def _digest_sample() -> dict:
    """A champion's week: six pairs, one fizzling, a milestone ahead, one pair sharing notes."""
    summary = SimpleNamespace(
        min_group_size=5, states=(("active", 4), ("at risk", 1), ("fizzling", 1)), declined=1, rating_change=0.3,
        this_period=_figures(5, 4, _Average(None, True), _Average(None, True), 0, 0),
        overall=_figures(18, 15, _Average(4.2), _Average(None, True), 1, 1),
        upcoming=(SimpleNamespace(pair_id="P02", milestone="midpoint", number=3, total=6,
                                  start=datetime(2027, 1, 12, 15, 0, tzinfo=timezone.utc)),))
    return {"program": sample_program(), "person": sample_champion(), "s": summary,
            "week_label": phrase("digest.week", start=day(date(2027, 1, 4), "MMMd"), end=day(date(2027, 1, 10), "yMMMd")),
            "attention": [SimpleNamespace(pair_id="P01", mentor="Aisha Khan", mentee="Richard Hale", state="fizzling",
                                          missed=2, held=1)],
            "notes": [SimpleNamespace(pair_id="P03", role="mentee", source="session",
                                      lines=(("topics", "TikTok, search"), ("next steps", "Follow three creators")))],
            "pct": lambda x: "-" if x is None else f"{x:.0%}", "local": lambda moment: WHEN}


WHEN = "Tue 12 Jan 2027, 15:00 GMT"
CATALOGUE: tuple[TemplateDoc, ...] = (
    _email("kickoff", "asks each person for consent and introduces the pair", PAIR, PERSON, OTHER, GOAL, *SERIES,
           ("role", "'mentor' or 'mentee': the recipient's role"),
           ("require_opt_in", "true when sessions are booked only after both said yes"),
           sample=_people(role="mentee", require_opt_in=True, cadence_text="every two weeks",
                          sessions_text="6 sessions")),
    _email("agenda", "before every session: the goal, a conversation starter, last time's next steps",
           PAIR, PERSON, OTHER, GOAL,
           ("number", "the session's number, 1 for the first"),
           ("total", "the number of sessions, or none when the programme runs to an end date"),
           ("when_local", "the session's time in the recipient's zone, e.g. " + WHEN),
           ("when_other", "the same time in the other person's zone"),
           ("starter", "a conversation starter the pair has not had yet (templates/starters.toml), "
                       "in the words written for the recipient's role where the starter has them"),
           ("next_steps", "the next steps both people logged last session, in one list (maybe empty)"),
           ("next_steps_by", "the same by person, the recipient's first: view.mine (true for the recipient's own), "
                             "view.name (first name), view.steps (a list)"),
           ("ask_progress", "true at the sessions where the reply should rate progress towards the goal"),
           ("location", "where the pair meets ([program] location or the roster's location column), or empty"),
           ("join_url", "the online meeting's join link the calendar server made (online_meetings on Graph or Google), or empty"),
           sample=_people(number=2, total=6, when_local=WHEN, when_other="Tue 12 Jan 2027, 10:00 EST",
                          starter="What surprised you most this month?", next_steps=["Try the app"],
                          next_steps_by=[{"mine": True, "name": "Richard", "steps": ["Try the app"]}],
                          ask_progress=True, location="Room 4.12", join_url="https://teams.example/l/meetup-join/1")),
    TemplateDoc("invitation", ("invitation.txt", "invitation.html", "event_description.txt"),
                "the calendar invitation's email (txt, html) and the event's description (event_description.txt)",
                (PROGRAM, PAIR, GOAL, *SERIES, PERSON, OTHER,
                 ("summary", "the event's title"),
                 ("count", "the number of sessions booked, or none when the series runs to [program] end_date "
                           "(for translations that write sessions_text in their own words)"),
                 ("shared", "true for the one body a calendar server keeps for both people (Exchange, Graph): "
                            "greet both; false in each person's own e-mail"),
                 ("when_local", "the first session in the recipient's zone"),
                 ("when_other", "the same in the other person's zone"),
                 ("cancelled", "true when the series is being cancelled"),
                 ("reason", "why a cancelled series ends: pause or stop (a reply of theirs), paused or ended "
                            "(the roster's status), declined, removed (the roster row is gone)"),
                 ("contact_name", "whom to ask about it: the champion's name"), ("contact", "the champion's address"),
                 ("sequence", "the invitation's revision, 0 for the first"),
                 ("first_mentee", "the first session in the mentee's zone"),
                 ("first_mentor", "the first session in the mentor's zone"),
                 ("location", "where the pair meets, or empty"), ("join_url", "the online meeting's join link, or empty")),
                _people(summary="Reverse mentoring: Aisha Khan & Richard Hale", cancelled=False, sequence=0,
                        cadence_text="every two weeks", sessions_text="6 sessions", first_mentee=WHEN,
                        first_mentor=WHEN, shared=False, when_local=WHEN, when_other=WHEN, reason="pause",
                        contact_name="Hans Becker", contact="champion@example.com", count=6,
                        location="Room 4.12", join_url="")),
    _email("nudge", "to a pair that missed sessions, or when the champion asks", PAIR, PERSON, OTHER, GOAL,
           ("missed", "sessions missed in a row"),
           ("next_local", "the next session in the recipient's zone, or none"),
           ("requested", "true when the champion asked for this nudge"),
           ("missed_when", "when the missed sessions were, each in the recipient's zone (a list)"),
           sample=_people(missed=2, next_local=WHEN, requested=False, missed_when=[WHEN, WHEN])),
    _email("alert", "to the champion when a pair keeps missing sessions", PAIR, CHAMPION,
           ("state", "the pair's health: fizzling, stalled, ..."), ("missed", "sessions missed in a row"),
           ("held", "sessions held so far"), token=False, sample=_about_pair(state="fizzling", missed=3, held=1, person=sample_champion())),
    _email("checkin", "asks the mentor privately how it is going", PAIR, PERSON, OTHER,
           sample=_people()),
    _email("flag", "passes a mentor's request for help to the champion", PAIR, CHAMPION,
           ("text", "what the mentor wrote"), token=False, sample=_about_pair(text="Could we talk?", person=sample_champion())),
    _email("confirm", "tells the champion what their emailed commands did",
           ("lines", "one line per command and its outcome"), token=False,
           sample=lambda: {"program": sample_program(), "lines": [phrase("command.nudge", pair="P01"), phrase("command.paused", pair="P02")]}),
    _email("survey", "a short survey at a milestone", PAIR, PERSON, OTHER,
           ("questions", "the questions for this milestone and role: q.id, q.text, q.kind (scale or text)"),
           ("milestone_text", "e.g. 'halfway through'"), ("intro", "one sentence on where the pair stands"),
           ("milestone", "first, midpoint or end: for a translation's own words for milestone_text and intro"),
           ("min_group", "the smallest group figures are shown for"),
           sample=lambda: _people(milestone_text="halfway through", intro="You are halfway through.", min_group=5,
                                  milestone="midpoint")()
           | {"questions": _survey_questions()}),
    _email("certificate", "thanks the mentor at the end (a copy goes to the champion)", PAIR, PERSON, OTHER, GOAL,
           ("held", "sessions held"), ("topics", "topics the pair covered (a list)"),
           ("champion", "the champion's address, or empty"), token=False,
           sample=_people(held=6, topics=["TikTok"], champion="champion@example.com")),
    _email("digest", "the champion's weekly figures; only aggregates, notes only where both agreed",
           CHAMPION, ("s", "the figures (see templates/digest.txt for the fields it reads)"), ("week_label", "the days covered, a phrase: {{ week_label|say }} gives 'week of 04 Jan to 10 Jan 2027' in the champion's language"),
           ("attention", "pairs that need attention: row.pair_id, row.mentor, row.mentee, row.state, row.missed, row.held"),
           ("notes", "shared notes: note.pair_id, note.role, note.source, note.lines"),
           ("pct", "a function: pct(0.5) gives '50%'"), ("local", "a function: local(moment) in the champion's zone"),
           token=False, sample=_digest_sample),
    _email("repair", "offers other times when someone declined a session", PAIR,
           ("decliners", "who declined, e.g. 'Aisha Khan and Richard Hale'"), ("both_declined", "true when both did"),
           ("decliner_names", "the same as a list of first names, for a translation's own 'and'"),
           ("when_mentee", "the declined session in the mentee's zone"), ("when_mentor", "the same in the mentor's zone"),
           ("options", "times offered: option.mentee and option.mentor (each person's zone)"),
           ("checked_calendars", "true when both calendars were read for free time"),
           ("comments", "what the decliners wrote with their answer: c.who, c.text"),
           ("proposals", "times proposed in a calendar that could not be taken: p.who, p.when and p.reason (phrases: {{ p.when|say }}, {{ p.reason|say }})"),
           sample=_about_pair(decliners="Aisha Khan", decliner_names=["Aisha"], both_declined=False,
                              when_mentee=WHEN, when_mentor=WHEN,
                              options=[{"mentee": WHEN, "mentor": WHEN}], checked_calendars=True,
                              comments=[{"who": "Aisha Khan", "text": "I am travelling that week"}],
                              proposals=[{"who": "Aisha Khan", "when": WHEN, "reason": _outside_hours()}])),
    _email("reschedule_refused", "says why a RESCHEDULE was not done", PAIR, PERSON,
           ("asked", "what the person wrote"), ("reason", "why it was not done, a phrase: write {{ reason|say }} for the reader's language"),
           ("when", "the session they asked to move, in their zone, or none"), token=False,
           sample=lambda: _people(asked="RESCHEDULE Sun 03:00", when=WHEN, reason=_outside_hours())()),
    _email("calendar_notice", "tells a person what the other did in their calendar (with what they wrote), that a "
                              "proposed time was taken or not, or that the invitation reached someone outside the pair",
           PAIR, PERSON, ("what", "what happened, one sentence (a phrase: {{ what|say }})"), ("when", "the session it is about, in their zone, or none"),
           ("who", "who wrote the comment"), ("comment", "what they wrote with their answer, or empty"),
           ("reason", "a sentence more (why a time was not taken; a phrase: {{ reason|say }}), or empty"), token=False,
           sample=lambda: _people(what=phrase("notice.declined_one", name="Aisha Khan"), when=WHEN, who="Aisha Khan",
                                  comment="I am travelling that week", reason="")()),
    TemplateDoc("layout", ("layout.html",), "the frame every e-mail's HTML part is set in (styles are then inlined)",
                (("body", "the e-mail's own HTML (from NAME.html), already escaped"),
                 ("lang", "the language the e-mail is written in (BCP 47), for <html lang>")),
                lambda: {"body": "<p>Hello</p>", "lang": "en"}),
    TemplateDoc("report", ("report.html",), "the HTML report (rmdaemon report --format html)",
                (("report", "the report: report.pairs, report.funnel, report.weeks, report.attention, report.outcomes, "
                            "report.cohorts, report.notes, ..."), ("s", "its summary figures"),
                 ("fmt", "formatting helpers"), ("percent", "a function: percent(0.5) gives '50%'"),
                 ("charts", "the charts by id (funnel, states, sessions, ...), each inline SVG or a one-line notice"),
                 ("week_states", "the pair states of the weekly chart, in order"), ("figures", "(label, figures) for this period and overall"),
                 ("notes_by_pair", "(pair_id, people, notes) for pairs who agreed to share notes"))),
)


def by_file() -> dict[str, TemplateDoc]:
    return {f: doc for doc in CATALOGUE for f in doc.files}


def reference_markdown() -> str:
    """docs/templates.md, from CATALOGUE."""
    out = ["# Templates and their variables", "",
           "Generated from `rmdaemon/template_vars.py` (`python -m rmdaemon.template_vars > docs/templates.md`).", "",
           "The shipped templates live in `templates/` and inside the installed package. `[templates] dir` names a",
           "folder whose files replace single templates; the others still come from the package",
           "(`rmdaemon init DIR --templates` copies them all to start from). An email template is a pair:",
           "`NAME.txt` starts with a `Subject:` line and a blank line, then the text; `NAME.html` is the HTML part",
           "(autoescaped). Templates run in Jinja2's sandbox.", "",
           "`rmdaemon check` reads every template: a syntax error, an unknown filter, or a name that is not one of",
           "the template's variables below is reported with file, line and a did-you-mean. Then the template is",
           "rendered on a sample context with undefined values as errors, which catches a misspelt field",
           "(`person.frist_name`). Templates marked *names only* have no sample and are checked by names.", ""]
    out += ["## Languages", "",
            "Each person gets their e-mails in the roster's `mentor_language` / `mentee_language` (BCP 47: `de`, `pt-BR`),",
            "else `[program] language`. The English templates sit at the top of the folder; a translation is the same",
            "file under the language's folder: `de/agenda.txt`, `pt/agenda.txt` (used for `pt-BR` too, unless `pt-BR/` has",
            "one), `ja/agenda.txt`. Shipped: `de`, `fr`, `es`, `nl`, `pt`, `ja` for every e-mail a pair reads. A file a",
            "language lacks comes in `[program] language`, then English, and `rmdaemon check` lists, per language the",
            "roster uses, the e-mails that would. A translation without its own `NAME.html` gets HTML made from its",
            "text (paragraphs; indented blocks such as the reply prompts kept as written). A message several people",
            "share (a repair offer; the calendar event's own description) carries each reader's language, the first",
            "reader's first. Dates and times (`when_local` and the like) come formatted for the reader's language from",
            "CLDR (Babel): `Di., 12. Jan. 2027, 15:00 CET`, `2027年1月12日(火) 23:00 JST`.", "",
            "The reply prompts (`Teilgenommen: ja`, `評価：1-5`) and commands (`VERSCHIEBEN Do 14:00`) of a translation",
            "must be words the reply parser reads (`rmdaemon/replies/fields.py`, `commands.py`); tests/test_languages.py",
            "answers each shipped agenda in its own language. `<lang>/starters.toml` and `<lang>/surveys.toml` translate",
            "starters and survey questions by id. The `san` filter writes a name as Japanese mail does (`田中さん`);",
            "`{{ program.end_date|day }}` writes a date as the template's language does (`30. Juni 2027`, `2027年6月30日`).", "",
            "Sentences the code composes (why a RESCHEDULE was refused, what the other person did in their calendar, the",
            "week a digest covers) and the words for pair states, milestones and roles come from `phrases.toml` and its",
            "translations `<lang>/phrases.toml` (same keys; `rmdaemon check` lists what a language lacks). Such a variable",
            "is a *phrase*: `{{ reason|say }}` writes it in the template's own language, `{{ state|say(\"state\") }}` looks",
            "one word up in a section (`[state]`); `{{ reason }}` alone gives English.", "",
            "Every e-mail's HTML is set in `layout.html` (one column of at most 600 px, a layout table for Outlook,",
            "colours for light and dark mode, no images) and its styles are then inlined onto each element (css-inline).", "",
            "## Names", "", "`person.first_name` (and `pair.mentor.first_name`, `other.first_name`) is how an e-mail greets someone.",
            "The rule (`rmdaemon/names.py`):", "", *_names_rule(), ""]
    for doc in CATALOGUE:
        files = ", ".join(f"`{f}`" for f in doc.files)
        out += [f"## {doc.name}", "", f"{files}: {doc.purpose}." + ("" if doc.sample else " *Names only.*"), "",
                "| variable | meaning |", "| --- | --- |"]
        out += [f"| `{name}` | {text} |" for name, text in doc.variables]
        out.append("")
    return "\n".join(out)


def _names_rule() -> list[str]:
    """The rule as rmdaemon/names.py states it, so the doc cannot drift from the code."""
    from rmdaemon import names

    text = (names.__doc__ or "").split("\n\n", 1)[1]
    return [line.strip() if not line.startswith("   ") else line[1:] for line in text.strip().splitlines()]


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
