"""E-mails in each person's language, end to end on the local backend: the kickoff in their
language is answered with their word for yes, the agenda's reply prompts in their language come
back as the right fields, and an invitation between two languages carries both. Plus golden
files: one e-mail of each kind in each language (tests/golden/<lang>/<kind>.txt, reviewed)."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from programme import Programme, status
from rmdaemon import compose, phrases, template_vars
from rmdaemon.replies import parse_reply

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
GOLDEN = Path(__file__).parent / "golden"
HEADER = "pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone,mentor_language,mentee_language,mentor_working_hours\n"
# language → (its word for yes, a phrase its agenda carries, its starter's opening for the mentee)
LANGUAGES = {
    "en": ("YES", "Conversation starter:", "Ask Aisha"),
    "de": ("JA", "Zum Einstieg:", "Fragen Sie Aisha"),
    "fr": ("OUI", "Pour lancer la conversation :", "Demandez à Aisha"),
    "es": ("SÍ", "Para empezar la conversación:", "Pregúntale a Aisha"),
    "nl": ("JA", "Om het gesprek te openen:", "Vraag Aisha"),
    "pt-BR": ("SIM", "Para começar a conversa:", "Pergunte a Aisha"),
    "ja": ("はい", "会話のきっかけ：", "Khanさん"),
}
ANSWERS = ["Creators, search", "How they pick products", "Follow three creators", "4", "3"]


def _text(msg) -> str:
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


def _programme(root: Path, mentor_language: str, mentee_language: str, mentor: str = "Aisha Khan") -> Programme:
    roster = HEADER + (f"P01,{mentor},aisha@example.com,Richard Hale,richard@example.com,Learn TikTok,"
                       f"Asia/Tokyo,Europe/Berlin,{mentor_language},{mentee_language},13:00-21:00\n")
    return Programme.create(root, roster=roster)


def _filled(agenda: str) -> str:
    """The agenda's own reply prompts, answered: the block of indented 'Label: …' lines."""
    prompts = re.findall(r"^  (\S[^:：\n]*?)\s?[:：] ?(.*)$", agenda, re.MULTILINE)
    prompts = [(label, value) for label, value in prompts if "-" not in label]  # not the next-steps list
    assert len(prompts) >= 5, agenda
    attended, *rest = prompts
    lines = [f"{attended[0]}: {attended[1]}"] + [f"{label}: {answer}" for (label, _), answer in zip(rest, ANSWERS)]
    return "\n".join(lines)


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_agenda_answered_in_its_language_gives_the_right_fields(tmp_path, capsys, language):
    yes, marker, mentee_starter = LANGUAGES[language]
    prog = _programme(tmp_path, language, language)
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        assert f" {yes} " in _text(kickoff).replace("「", " ").replace("」", " ").replace(",", " ") or yes in _text(kickoff)
        prog.reply(kickoff, yes, T0)
    prog.run(T0 + timedelta(hours=1))
    start = datetime.fromisoformat(status(prog, T0 + timedelta(hours=1), capsys)["P01"]["next_session"])
    prog.run(start - timedelta(hours=23))
    (agenda,) = prog.outbox("agenda.", to="richard@")
    text = _text(agenda)
    assert marker in text and mentee_starter in text
    reply = prog.reply(agenda, _filled(text), start + timedelta(hours=1))
    fields = parse_reply(reply.read_bytes()).fields
    assert fields["attended"] is True
    assert fields["topics"] == ["Creators", "search"]
    assert fields["learned"] == "How they pick products"
    assert fields["next_steps"] == ["Follow three creators"]
    assert fields["rating"] == 4 and fields["progress"] in (3, None)  # progress is asked at some sessions only
    prog.run(start + timedelta(hours=2))
    assert status(prog, start + timedelta(hours=2), capsys)["P01"]["sessions_held"] == 1


def test_an_invitation_between_two_languages_gives_each_their_own_and_the_calendar_both(tmp_path):
    prog = _programme(tmp_path, "ja", "de", mentor="田中 由紀")
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "はい" if "aisha" in str(kickoff["To"]) else "JA", T0)
    prog.run(T0 + timedelta(hours=1))
    (to_aisha,), (to_richard,) = prog.outbox("itip", to="aisha@"), prog.outbox("itip", to="richard@")
    aisha, richard = _text(to_aisha), _text(to_richard)
    assert aisha.startswith("田中さん\n") and "定例セッション" in aisha and "Hallo" not in aisha
    assert richard.startswith("Hallo Richard,") and "geschützte Termin" in richard and "定例" not in richard
    # each reads their own time first, in their own language's format
    assert re.search(r"日時：2027年1月\d+日\(.\) \d\d:\d\d JST（Richardさんの現地時間では 2027年1月\d+日\(.\) \d\d:\d\d CET）", aisha)
    assert re.search(r"mit 田中:\n\w\w\., \d+\. Jan\. 2027, \d\d:\d\d CET \(\w\w\., \d+\. Jan\. 2027, \d\d:\d\d JST für 田中\)", richard)
    # the event's own description, which both see in their calendar, carries both languages
    ics = to_aisha.get_payload()[1].get_payload(decode=True).decode()
    assert "Reverse-Mentoring-Termin" in ics and "リバースメンタリング" in ics


def test_check_lists_the_translations_a_language_lacks(tmp_path, capsys):
    prog = _programme(tmp_path, "it", "de")
    assert prog.cli("check") == 0
    out = capsys.readouterr().out
    assert "no it translation of kickoff.txt" in out and "readers of it get these e-mails in en" in out
    assert "no de translation of kickoff.txt" not in out


# language → what its refusal of a time outside working hours says, and its digest's first words
OUTSIDE = {"en": "is outside working hours", "de": "liegt außerhalb der Arbeitszeit",
           "fr": "tombe en dehors des heures de travail", "es": "queda fuera del horario laboral",
           "nl": "valt buiten de werktijden", "pt-BR": "fica fora do horário de trabalho", "ja": "勤務時間外です"}
DIGEST = {"de": ("Wochenüberblick, Woche vom", "Tandems nach Stand:", "gefährdet: 1", "PAUSE P01: pausiert;"),
          "ja": ("週次レポート（", "ペアの状況：", "停滞しかけている：1", "PAUSE P01：一時停止しました。")}


def _agreed(prog: Programme, language: str, capsys) -> datetime:
    """Both said yes in their language; the first session's start."""
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, LANGUAGES[language][0], T0)
    prog.run(T0 + timedelta(hours=1))
    return datetime.fromisoformat(status(prog, T0 + timedelta(hours=1), capsys)["P01"]["next_session"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_refused_reschedule_says_why_in_the_readers_language(tmp_path, capsys, language):
    """The reason is composed by the code (a time, whose working hours): it reads in the reader's
    language too, with the reader's names of the days, not in English inside a translated e-mail."""
    prog = _programme(tmp_path, language, language)
    start = _agreed(prog, language, capsys)
    prog.run(start - timedelta(hours=23))
    (agenda,) = prog.outbox("agenda.", to="richard@")
    prog.reply(agenda, "RESCHEDULE Sat 03:00", start - timedelta(hours=22))
    prog.run(start - timedelta(hours=21))
    (notice,) = prog.outbox("notice")
    text = " ".join(_text(notice).split())
    assert OUTSIDE[language] in text, text
    assert language == "en" or ("outside working hours" not in text and "Mon,Tue" not in text), text


@pytest.mark.parametrize("language", DIGEST)
def test_the_champion_reads_the_digest_and_the_command_confirmations_in_the_programme_language(tmp_path, capsys, language):
    roster = HEADER + "P01,Aisha Khan,aisha@example.com,Richard Hale,richard@example.com,Learn TikTok,Asia/Tokyo,Europe/Berlin,,,13:00-21:00\n"
    prog = Programme.create(tmp_path, roster=roster, language=f'"{language}"')
    start = _agreed(prog, language, capsys)
    prog.run(start + timedelta(days=8))
    digest = prog.outbox("digest")[0]
    subject, first, state, paused = DIGEST[language]
    assert subject in digest["Subject"]
    text = _text(digest)
    assert first in text and state in text and "weekly digest" not in text and "Pairs by state" not in text
    prog.reply(digest, "PAUSE P01", start + timedelta(days=8, hours=1))
    prog.run(start + timedelta(days=8, hours=2))
    (confirm,) = prog.outbox("confirm")
    assert paused in _text(confirm) and "paused; their calendars are freed" not in _text(confirm)


def test_check_names_the_phrases_a_translation_lacks_and_a_value_it_invents(tmp_path):
    folder = tmp_path / "de"
    folder.mkdir()
    shipped = (compose.shipped_templates() / "de" / "phrases.toml").read_text(encoding="utf-8")
    edited = shipped.replace('busy = "Der Kalender von {name} ist am {when} belegt"\n', "")
    (folder / "phrases.toml").write_text(edited.replace("{when} liegt schon", "{wann} liegt schon"), encoding="utf-8")
    assert any("de/phrases.toml: refused.passed uses {wann}" in p for p in compose.check_templates(tmp_path))
    (line,) = compose.missing_translations(tmp_path, ["de"])
    assert "de/phrases.toml lacks refused.busy: readers of de get these sentences in en" in line
    assert compose.missing_translations(None, LANGUAGES) == []


def test_every_shipped_starter_speaks_to_each_role_in_every_language():
    """Each track's starters, to the mentor ("show Richard…") and to the mentee ("ask Aisha about…"),
    in each of the seven languages: none falls back to the neutral form or to English."""
    templates = compose.load_templates()
    for track, starters in templates.starters.items():
        for starter in starters:
            for language in LANGUAGES:
                said = templates.starter_in(starter, language)
                assert language == "en" or said is not starter, (language, track, starter.id)
                assert "{mentee}" in said.mentor and "{mentor}" in said.mentee, (language, track, starter.id)
                assert said.mentor != said.mentee and said.text not in (said.mentor, said.mentee), (language, starter.id)


# --- golden files ---------------------------------------------------------------------------------

SAMPLE_TIMES = {template_vars.WHEN: ("Europe/London", datetime(2027, 1, 12, 15, 0, tzinfo=timezone.utc)),
                "Tue 12 Jan 2027, 10:00 EST": ("America/New_York", datetime(2027, 1, 12, 15, 0, tzinfo=timezone.utc))}


def _localised(value: object, language: str) -> object:
    """The sample's English times, as a reader of ``language`` gets them."""
    if isinstance(value, str) and value in SAMPLE_TIMES:
        zone, moment = SAMPLE_TIMES[value]
        return phrases.local_time(moment, zone, language)
    if isinstance(value, list):
        return [_localised(v, language) for v in value]
    if isinstance(value, dict):
        return {k: _localised(v, language) for k, v in value.items()}
    return value


def _golden_context(templates: compose.Templates, kind: str, language: str) -> dict:
    """The catalogue's sample, with its people reading ``language``, its times in their format, and
    the shipped starter and survey questions in their language."""
    doc = next(d for d in template_vars.CATALOGUE if d.name == kind)
    context = {key: _localised(value, language) for key, value in doc.sample().items()}
    for key in ("person", "other"):
        if key in context:
            context[key] = replace(context[key], language=language)
    if "pair" in context:
        pair = context["pair"]
        context["pair"] = replace(pair, mentor=replace(pair.mentor, language=language),
                                  mentee=replace(pair.mentee, language=language))
    if "starter" in context:
        starter = templates.starter_in(templates.starters["general"][1], language)
        context["starter"] = compose.starter_for({"starter_text": starter.text, "starter_mentee": starter.mentee},
                                                 "mentee", context["pair"].mentor.first_name, "")
    if "local" in context:  # the digest's times, in the champion's zone and language
        context["local"] = lambda moment: phrases.local_time(moment, "Europe/London", language)
    if "questions" in context:
        context["questions"] = [templates.question_in(q, language) for q in templates.survey("midpoint", "mentee")]
    return context


GOLDEN_KINDS = [d.name for d in template_vars.CATALOGUE if d.sample and d.name in compose.EMAIL_TEMPLATES]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", GOLDEN_KINDS)
def test_golden_email(kind, language):
    templates = compose.load_templates()
    out = compose.render(templates, kind, _golden_context(templates, kind, language), (language,), "en")
    text = f"Subject: {out.subject}\n\n{out.text}"
    path = GOLDEN / language / f"{kind}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path}: regenerate with UPDATE_GOLDEN=1 and review the diff"
    assert "{{" not in text and "{%" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_programme_that_runs_to_an_end_date_names_it_as_the_reader_writes_dates(language):
    """Kickoff and invitation say until when the sessions run: a reader of German reads
    '30. Juni 2027', not the config's '2027-06-30'."""
    templates = compose.load_templates()
    for kind in ("kickoff", "invitation"):
        context = _golden_context(templates, kind, language)
        context["program"] = replace(context["program"], sessions=None, end_date=date(2027, 6, 30))
        if "count" in context:
            context["count"] = None
        out = compose.render(templates, kind, context, (language,), "en")
        if language.startswith("en"):
            continue  # English names the span in the series' summary (programme/series.py)
        assert "2027-06-30" not in out.text
        assert phrases.local_day(date(2027, 6, 30), language, "yMMMMd") in out.text, (kind, out.text)
