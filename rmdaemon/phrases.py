"""The words code composes for a reader (why a RESCHEDULE was refused, what the other person did
in their calendar, the week a digest covers, a pair's state) in the reader's language, taken
from the same folder as the templates: ``phrases.toml`` and its translations ``<lang>/phrases.toml``.

Code never writes such a sentence: it keeps a *phrase*, data naming an entry of the catalogue
and its values, e.g. ``{"say": "refused.passed", "when": {"at": "2027-01-18T08:30:00+00:00",
"zone": "Europe/London"}}``. Phrases are stored as they are (a queued notice, a refused
proposal), so the words are chosen only when an e-mail is rendered: in the language of the
template file being rendered (``{{ reason|say }}``; ``{{ state|say("state") }}`` for one word of
a set such as the health states). A value is text, a number, another phrase, a list of phrases
(joined by the catalogue's ``list.join``), a moment (``at`` and ``zone``: written in that zone
the reader's way, as every session time), a day (``date`` and a CLDR ``form``) or working hours
(``from``, ``to``, ``days``) or one word of a set (``section`` and ``word``). Text stored
before phrases existed is English and is shown as it is.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, get_day_names

from rmdaemon.model import WEEKDAYS, WorkingHours
from rmdaemon.names import base_language

PHRASES_FILE = "phrases.toml"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def phrase(key: str, **values: Any) -> dict[str, Any]:
    """A catalogue entry and its values, as code keeps it (JSON-ready)."""
    return {"say": key, **values}


def word(section: str, value: str) -> dict[str, str]:
    """One word of a set (a pair's state) a phrase shows in the reader's language."""
    return {"section": section, "word": value}


def moment(at: datetime, zone: str) -> dict[str, str]:
    """A time a phrase shows in ``zone``, in the reader's language."""
    return {"at": at.isoformat(), "zone": zone}


def day(when: date, form: str = "yMMMEd") -> dict[str, str]:
    """A day a phrase shows in the reader's language (``form``: a CLDR skeleton, ``MMMd`` = "4 Jan")."""
    return {"date": when.isoformat(), "form": form}


def hours(working: WorkingHours) -> dict[str, Any]:
    """Working hours (``model.WorkingHours``) a phrase shows with the reader's names of the days."""
    return {"from": f"{working.start:%H:%M}", "to": f"{working.end:%H:%M}", "days": list(working.days)}


def local_hours(value: Mapping[str, Any], language: str = "en") -> str:
    """``09:00-17:00 Mon,Tue,Wed`` (English, as ``WorkingHours`` prints), ``09:00-17:00 Mo.,Di.,Mi.``."""
    if base_language(language or "en") == "en":
        names = WEEKDAYS
    else:
        names = tuple(get_day_names("abbreviated", locale=_locale(language))[d] for d in range(7))
    return f"{value['from']}-{value['to']} " + ",".join(names[d] for d in value["days"])


def local_time(at: datetime, zone: str, language: str = "en") -> str:
    """How a person reads a session time in their own zone and language: ``Tue 12 Jan 2027, 15:00
    GMT``, ``Di., 12. Jan. 2027, 15:00 CET``, ``2027年1月12日(火) 15:00 JST``. Day and month names
    and their order come from CLDR (Babel); the zone's abbreviation follows, as calendars show it."""
    return _local_time(at.astimezone(timezone.utc), zone, language)


@lru_cache(maxsize=4096)
def _local_time(at: datetime, zone: str, language: str) -> str:
    """``local_time`` of a UTC moment: sessions start on a few hundred slots, and a first tick
    writes ten times for each pair (every invitation shows both people's), an agenda tick four.
    Keyed by the UTC moment: two local times of a clock turned back compare equal but are not
    the same moment."""
    local = at.astimezone(ZoneInfo(zone))
    lang = base_language(language or "en")
    if lang == "en":
        return local.strftime("%a %d %b %Y, %H:%M %Z")
    shown = format_skeleton("yMMMEd", local, locale=_locale(language))
    sep = " " if lang in ("ja", "zh", "ko") else ", "
    return f"{shown}{sep}{local:%H:%M %Z}"


def local_day(when: date, language: str = "en", form: str = "yMMMEd") -> str:
    """A day as ``language`` writes it (English as the e-mails always wrote it: ``Tue 12 Jan 2027``)."""
    if base_language(language or "en") == "en":
        return when.strftime({"MMMd": "%d %b", "yMMMd": "%d %b %Y", "yMMMMd": "%d %B %Y"}.get(form, "%a %d %b %Y"))
    return format_skeleton(form, when, locale=_locale(language))


@lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    """The CLDR locale of a BCP 47 tag (``pt-BR`` → pt_BR), or of its language when the region is unknown."""
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(base_language(language))


class Catalogue:
    """The phrase tables of one templates folder, read once per language when first needed.

    ``read(path)`` gives a file's text or None (``de/phrases.toml``); an entry a translation
    lacks is taken from the English ``phrases.toml``, then the key itself is shown."""

    def __init__(self, read: Callable[[str], str | None]) -> None:
        self._read = read
        self._tables: dict[str, dict[str, str]] = {}

    def table(self, language: str) -> dict[str, str]:
        """``section.key`` → text of one language's file (empty when it has none)."""
        if language not in self._tables:
            text = self._read(PHRASES_FILE if language == "en" else f"{language}/{PHRASES_FILE}")
            self._tables[language] = flatten(tomllib.loads(text)) if text else {}
        return self._tables[language]

    def entry(self, key: str, language: str) -> str | None:
        for tag in dict.fromkeys((language, base_language(language), "en")):
            found = self.table(tag).get(key)
            if found is not None:
                return found
        return None

    def words(self, value: object, language: str = "en", section: str = "") -> str:
        """``value`` as a reader of ``language`` reads it (the module's docstring says what a value is)."""
        if isinstance(value, Said):
            value = value.data
        if section:
            return self.entry(f"{section}.{value}", language) or str(value)
        if isinstance(value, list):
            return (self.entry("list.join", language) or "; ").join(self.words(v, language) for v in value)
        if not isinstance(value, Mapping):
            return str(value)
        if "at" in value:
            return local_time(datetime.fromisoformat(value["at"]), value["zone"], language)
        if "section" in value:
            return self.words(value["word"], language, value["section"])
        if "days" in value:
            return local_hours(value, language)
        if "date" in value:
            return local_day(date.fromisoformat(value["date"]), language, value.get("form", "yMMMEd"))
        text = self.entry(str(value.get("say")), language)
        if text is None:
            return str(value.get("say"))
        return PLACEHOLDER.sub(lambda m: self.words(value[m[1]], language) if m[1] in value else m[0], text)

    def said(self, value: object) -> Said | object:
        """A phrase for a template's context: ``{{ reason|say }}`` gives the file's language,
        ``{{ reason }}`` (a template written before phrases) English. Text stays text."""
        return Said(value, self) if isinstance(value, (Mapping, list)) else value


class Said:
    """A phrase in a template's context (see ``Catalogue.said``)."""

    def __init__(self, data: object, catalogue: Catalogue) -> None:
        self.data, self._catalogue = data, catalogue

    def __str__(self) -> str:
        return self._catalogue.words(self.data, "en")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"refused": {"passed": "…"}}`` → ``{"refused.passed": "…"}``."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@lru_cache(maxsize=1)
def _shipped() -> Catalogue:
    folder = resources.files("rmdaemon") / "templates"
    return Catalogue(lambda name: (folder / name).read_text(encoding="utf-8") if (folder / name).is_file() else None)


def english(value: object) -> str:
    """A phrase in English from the shipped catalogue: for the log and ``status``, never for a reader."""
    return _shipped().words(value, "en")


class PhraseError(ValueError):
    """A ValueError whose message is a phrase: English in the log, the reader's language in the
    e-mail that answers them (``said``)."""

    def __init__(self, said: dict[str, Any]) -> None:
        super().__init__(english(said))
        self.said = said


def problems(catalogue: Catalogue, languages: list[str]) -> list[str]:
    """Each translated entry whose placeholders the English one does not have, and each entry the
    English file lacks: what would show as ``{name}`` or as a bare key in an e-mail."""
    found = []
    english_table = catalogue.table("en")
    for language in languages:
        for key, text in catalogue.table(language).items():
            original = english_table.get(key)
            if original is None:
                found.append(f"{language}/{PHRASES_FILE}: {key} is not in {PHRASES_FILE}; remove it or check its name")
                continue
            extra = set(PLACEHOLDER.findall(text)) - set(PLACEHOLDER.findall(original))
            if extra:
                found.append(f"{language}/{PHRASES_FILE}: {key} uses {', '.join('{' + e + '}' for e in sorted(extra))}, "
                             f"which {PHRASES_FILE} does not give it")
    return found


def missing(catalogue: Catalogue, language: str) -> list[str]:
    """The entries of the English catalogue a language's lacks (they come in English)."""
    own = {**catalogue.table(base_language(language)), **catalogue.table(language)}
    return [key for key in catalogue.table("en") if key not in own]
