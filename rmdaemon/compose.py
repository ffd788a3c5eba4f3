"""Templates → RFC 5322 bytes. Pure: no clock, no I/O beyond reading the template files.

Every email is ``multipart/alternative`` (text + autoescaped HTML, so a reply quoted into a later
agenda cannot inject markup). Message-IDs and MIME boundaries derive from the message's
idempotency key, so rebuilding the same message gives the same identity.
An invitation follows the iMIP shape Outlook, Gmail and Apple Mail all act on: the ``text/calendar; method=…`` part inside
the alternative (first child of ``multipart/mixed``) and the same bytes again as an attachment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import tomllib
from importlib import resources
from dataclasses import dataclass, field, replace
from functools import lru_cache
from datetime import datetime, timedelta
from email import encoders
from email.charset import QP, Charset
from email.quoprimime import body_check as quopri_unsafe, quote as quopri_quote
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, quote
from html import escape
from pathlib import Path
from collections.abc import Iterable
from typing import Any
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import css_inline
import jinja2
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from rmdaemon import phrases, templatecheck
from rmdaemon.errors import UserError
from rmdaemon.model import Person
from rmdaemon.names import base_language



class _Wire(Compat32):
    """The classic policy with RFC 5322 line ends, plus two short cuts for a header of printable
    ASCII: one that fits on one line is written as it is, and a longer one is folded where
    ``email.header`` folds it (``_folded``). compat32 sends every header through that module's
    folding machinery, which was half the cost of serialising a message (bench/), and an agenda's
    subject, longer than a line, cost 50 µs there; tests/test_compose.py compares the two ways on
    random values."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if (isinstance(value, str) and len(name) + len(value) + 2 <= (self.max_line_length or 998)
                and value.isascii() and "\r" not in value and "\n" not in value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        if isinstance(value, str) and value.isascii() and value.isprintable():
            lines = _folded(len(name) + 2, value, self.max_line_length or 1_000_000)
            return f"{name}: {self.linesep.join(lines)}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


def _folded(taken: int, value: str, limit: int) -> list[str]:
    """The lines ``email.header.Header(value).encode()`` folds ``value`` into (printable ASCII, a
    first line of which ``taken`` characters hold the header's name): words are added to a line
    until it is longer than ``limit``, then it is cut before its last word that follows a ``;``,
    else a ``,``, else a space; a word alone on the first line gets a line of its own."""
    pieces = re.split("( +)", value)
    if pieces[0]:
        pieces.insert(0, "")
    else:
        del pieces[0]
    lines: list[str] = []
    line: list[tuple[str, str]] = []
    size, first = taken, True  # the line's length, and whether it is the one after the name
    for space, word in zip(pieces[::2], pieces[1::2]):
        line.append((space, word))
        size += len(space) + len(word)
        if size <= limit:
            continue
        cut = _cut(line)
        if cut:
            lines.append("".join(s + w for s, w in line[:cut]))
            line = line[cut:]
            size, first = sum(len(s) + len(w) for s, w in line), False
        elif first:  # one word too long for the line after the name: it starts the next line
            lines.append("")
            line, first = [(space or " ", word)], False
            size = len(line[0][0]) + len(word)
    text = "".join(s + w for s, w in line)
    if not first and lines and text.isspace():
        lines[-1] += text
    elif first or text:
        lines.append(text)
    return lines


def _cut(line: list[tuple[str, str]]) -> int:
    """Where ``email.header`` cuts an overlong line: before its last word that follows a ``;``,
    else one that follows a ``,``, else its last word after a space; 0 for nowhere."""
    for mark in ";,":
        for i in range(len(line) - 1, 0, -1):
            if line[i - 1][1].endswith(mark):
                return i
    for i in range(len(line) - 1, 0, -1):
        if line[i][0]:
            return i
    return 0


WIRE = _Wire(linesep="\r\n", max_line_length=78)  # RFC 5322 line ends for the bytes we send
EMAIL_TEMPLATES = ("kickoff", "agenda", "invitation", "nudge", "alert", "checkin", "flag", "confirm", "survey",
                   "certificate", "digest", "repair", "reschedule_refused", "calendar_notice")
REPORT_TEMPLATE = "report.html"
LAYOUT = "layout.html"  # the frame every e-mail's HTML is set in: one 600 px column, light and dark
TEMPLATE_FILES = (tuple(f"{n}.{ext}" for n in EMAIL_TEMPLATES for ext in ("txt", "html"))
                  + ("event_description.txt", LAYOUT))
STARTERS_FILE = "starters.toml"
SURVEYS_FILE = "surveys.toml"


@dataclass(frozen=True)
class Starter:
    """A conversation starter. ``mentor`` and ``mentee`` are the same prompt written to each role
    ("Show {mentee} ..." / "Ask {mentor} about ..."), where ``{mentor}`` and ``{mentee}`` become
    first names; ``text`` is the neutral form, used for a role without its own."""

    id: str
    text: str
    mentor: str = ""
    mentee: str = ""


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str  # scale (1-5) | text
    roles: tuple[str, ...]
    milestones: tuple[str, ...]


@dataclass(frozen=True)
class Templates:
    env: jinja2.Environment
    starters: dict[str, tuple[Starter, ...]]
    questions: tuple[Question, ...] = ()
    files: frozenset[str] = frozenset()  # every template path the loader finds ("agenda.txt", "de/agenda.txt")
    # Translations by language: starters (id → Starter) and survey questions (id → text) from
    # <lang>/starters.toml and <lang>/surveys.toml; what is missing there stays English.
    starter_texts: dict[str, dict[str, Starter]] = field(default_factory=dict)
    question_texts: dict[str, dict[str, str]] = field(default_factory=dict)
    # The compiled templates this tick has used, by file, each with its globals in one dict.
    # ``env.get_template`` looks each one up again and asks the file system whether it changed (a
    # ``stat``): 160,000 times a first tick at 10,000 pairs. A Templates lives for one tick, and
    # the next tick's sees an edit.
    compiled: dict[str, tuple[jinja2.Template, dict[str, Any]]] = field(default_factory=dict, compare=False, repr=False)

    def template(self, name: str) -> tuple[jinja2.Template, dict[str, Any]]:
        found = self.compiled.get(name)
        if found is None:
            template = self.env.get_template(name)
            found = self.compiled[name] = (template, dict(template.globals))
        return found

    def starter_in(self, starter: Starter, language: str) -> Starter:
        """``starter`` in ``language`` where a translation has it (``pt-BR``, then ``pt``)."""
        for tag in (language, base_language(language)):
            found = self.starter_texts.get(tag, {}).get(starter.id)
            if found:
                return found
        return starter

    def question_in(self, question: Question, language: str) -> Question:
        for tag in (language, base_language(language)):
            text = self.question_texts.get(tag, {}).get(question.id)
            if text:
                return replace(question, text=text)
        return question

    def survey(self, milestone: str, role: str) -> list[Question]:
        return [q for q in self.questions if milestone in q.milestones and role in q.roles]

    def said(self, value: object) -> object:
        """A stored phrase (``phrases.py``) for a template's context: ``{{ value|say }}`` writes it
        in the file's language."""
        return self.env.phrases.said(value)

    def say(self, value: object, language: str) -> str:
        """A phrase's words for a reader of ``language``, for text built outside a template."""
        return self.env.phrases.words(value, language)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def shipped_templates() -> Path:
    """The templates inside the installed package: a wheel carries them, no checkout needed."""
    return Path(str(resources.files("rmdaemon") / "templates"))


def _search_path(override: Path | None) -> list[str]:
    """An override directory shadows the shipped templates file by file."""
    dirs = [override] if override else []
    return [str(d) for d in [*dirs, shipped_templates()]]


def load_templates(override: Path | None = None, remembered: Path | None = None) -> Templates:
    """The templates of ``override`` (else the shipped ones), checked; a UserError listing every
    problem. ``remembered``: a file (beside the state) where a clean check is noted, so the next
    process skips a check whose answer cannot have changed (``templatecheck.content_key``)."""
    env, problems = _checked(override, _fingerprint(override), remembered)
    if problems:
        raise UserError(f"templates have {len(problems)} problem(s)", list(problems))
    files = frozenset(env.list_templates())
    starters, questions = {}, {}
    for path in sorted(files):
        language, _, name = path.rpartition("/")
        if language and name == STARTERS_FILE:
            starters[language] = {s.id: s for track in _read_starters(_find(override, path)).values() for s in track}
        elif language and name == SURVEYS_FILE:
            data = tomllib.loads(_find(override, path).read_text(encoding="utf-8"))
            questions[language] = {str(q["id"]): str(q["text"]) for q in data.get("question", [])}
    return Templates(env=env, starters=_read_starters(_find(override, STARTERS_FILE)),
                     questions=_read_questions(_find(override, SURVEYS_FILE)), files=files,
                     starter_texts=starters, question_texts=questions)


def _environment(override: Path | None) -> jinja2.Environment:
    # The sandbox: a template (an admin's override, or a copied one) can read the values it is
    # given but never reach Python's internals (``''.__class__.__mro__`` and the like).
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(_search_path(override)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["san"] = honorific
    catalogue = phrases.Catalogue(lambda name: _source(env, name))
    env.extend(phrases=catalogue)
    env.filters["say"] = jinja2.pass_context(
        lambda context, value, section="": catalogue.words(value, context.get("language", "en"), section))
    env.filters["day"] = jinja2.pass_context(
        lambda context, value, form="yMMMMd": phrases.local_day(value, context.get("language", "en"), form))
    return env


def _source(env: jinja2.Environment, name: str) -> str | None:
    """A file of the templates folder (the override's, else the shipped one), or None."""
    try:
        return env.loader.get_source(env, name)[0]
    except jinja2.TemplateNotFound:
        return None


def honorific(name: str) -> str:
    """``{{ other.first_name|san }}``: a name as Japanese mail refers to a colleague, with さん
    (kept as it is when it already has さん or 様)."""
    return name if name.endswith(("さん", "様")) else f"{name}さん"


def _find(override: Path | None, name: str) -> Path:
    for d in _search_path(override):
        if (Path(d) / name).is_file():
            return Path(d) / name
    raise UserError(f"template {name} not found in {', '.join(_search_path(override))}; restore it with 'rmdaemon init DIR --templates', or remove the copy to use the shipped one")


def _read_starters(path: Path) -> dict[str, tuple[Starter, ...]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {track.casefold(): tuple(Starter(str(s["id"]), str(s["text"]), str(s.get("mentor", "")), str(s.get("mentee", "")))
                                    for s in items) for track, items in data.items()}


def starter_for(record: dict, role: str, mentor: str, mentee: str) -> str:
    """A session's starter as ``role`` reads it (a session record keeps ``starter_text`` and,
    where the starter has them, ``starter_mentor`` / ``starter_mentee``)."""
    text = record.get(f"starter_{role}") or record["starter_text"]
    return text.replace("{mentor}", mentor).replace("{mentee}", mentee)


def _read_questions(path: Path) -> tuple[Question, ...]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    questions = tuple(Question(str(q["id"]), str(q["text"]), str(q["kind"]), tuple(q["roles"]), tuple(q["milestones"]))
                      for q in data.get("question", []))
    for q in questions:
        if q.kind not in ("scale", "text"):
            raise ValueError(f"question {q.id}: kind must be scale or text, not {q.kind!r}")
    return questions


def _fingerprint(override: Path | None) -> tuple[tuple[str, int, int], ...]:
    """Name, size and mtime of every file the templates come from, translations in their language
    folders included: what the check's answer depends on."""
    found = []
    for folder in _search_path(override):
        for root, _dirs, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # gone between the listing and the look: the next tick sees it
                found.append((path, st.st_size, st.st_mtime_ns))
    return tuple(sorted(found))


@lru_cache(maxsize=8)
def _checked(override: Path | None, fingerprint: tuple[tuple[str, int, int], ...],
             remembered: Path | None = None) -> tuple[jinja2.Environment, tuple[str, ...]]:
    """``check_templates`` once per version of the files: parsing and compiling every template was
    nine tenths of a small tick, and the roster and templates are re-read every tick (admins edit
    them live), so an edit still counts from the next tick on. The environment the check compiled
    every template in is the one the tick renders with: compiling them all a second time was a
    tenth of an agenda tick at 1,000 pairs (bench/compare.py). A fresh process whose ``remembered``
    file names these very files and code as checked clean skips the check (its templates then
    compile as they are first rendered)."""
    env = _environment(override)
    if remembered is None:
        return env, tuple(check_templates(override, env))
    key = templatecheck.content_key(_search_path(override))
    if templatecheck.known_clean(remembered, key):
        return env, ()
    problems = tuple(check_templates(override, env))
    if not problems:
        templatecheck.remember_clean(remembered, key)
    return env, problems


def check_templates(override: Path | None = None, env: jinja2.Environment | None = None) -> list[str]:
    """Every template problem at once: missing files, syntax, unknown filters and names (with file,
    line and did-you-mean), and what rendering each on its sample context meets (in ``env``, the
    environment of ``override`` unless given)."""
    problems: list[str] = []
    if override is not None and not override.is_dir():
        return [f"[templates] dir: {override} is not a directory; create it or remove the key to use the shipped templates"]
    env = env or _environment(override)
    translations = [t for t in env.list_templates() if "/" in t and t.rpartition("/")[2] in TEMPLATE_FILES]
    for name in (*TEMPLATE_FILES, REPORT_TEMPLATE, *translations):
        try:
            problems += templatecheck.check_file(env, name)
        except jinja2.TemplateNotFound:
            problems.append(f"template {name}: not found in {', '.join(_search_path(override))}; "
                            f"copy it from {shipped_templates()}, or remove [templates] dir")
    try:
        starters_path = _find(override, STARTERS_FILE)
        if not _read_starters(starters_path).get("general"):
            problems.append(f"{starters_path}: needs a [[general]] list of starters, used by tracks without their own")
    except UserError as e:
        problems.append(str(e))
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as e:
        problems.append(f"{STARTERS_FILE}: {e}; each entry needs id and text")
    problems += _phrase_problems(env)
    try:
        _read_questions(_find(override, SURVEYS_FILE))
    except UserError as e:
        problems.append(str(e))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        problems.append(f"{SURVEYS_FILE}: {e}; each [[question]] needs id, text, kind, roles and milestones")
    return problems


def _phrase_problems(env: jinja2.Environment) -> list[str]:
    """phrases.toml and every translation of it: readable TOML, and no {value} the code does not give."""
    languages = sorted({t.partition("/")[0] for t in env.list_templates() if t.endswith("/" + phrases.PHRASES_FILE)})
    try:
        return phrases.problems(env.phrases, languages)
    except tomllib.TOMLDecodeError as e:
        return [f"{phrases.PHRASES_FILE}: {e}; each entry is key = \"text\" under a [section]"]


def missing_translations(override: Path | None, languages: Iterable[str], default: str = "en") -> list[str]:
    """For ``check``: each language people read whose templates lack some e-mails, and what they
    get instead (the default language's, else English)."""
    env = _environment(override)
    found = frozenset(env.list_templates())
    templates = Templates(env=env, starters={}, files=found)
    lines = []
    for language in sorted(set(languages)):
        if base_language(language) == "en":
            continue
        wanted = [f for f in TEMPLATE_FILES if f.endswith(".txt")]
        missing = [f for f in wanted if template_file(templates, f, language) == f]  # resolved to the English one
        lacking = phrases.missing(env.phrases, language)
        if lacking and len(lacking) == len(env.phrases.table("en")):
            missing, lacking = [*missing, phrases.PHRASES_FILE], []
        if missing:
            instead = base_language(default) if base_language(default) != base_language(language) else "en"
            lines.append(f"templates: no {language} translation of {', '.join(missing)}: readers of {language} get "
                         f"these e-mails in {instead}; add {base_language(language)}/NAME.txt to the templates folder "
                         "(docs/templates.md, Languages)")
        if lacking:
            lines.append(f"templates: {base_language(language)}/{phrases.PHRASES_FILE} lacks {', '.join(lacking)}: readers "
                         f"of {language} get these sentences in en; add them (docs/templates.md, Languages)")
    return lines


def render(templates: Templates, name: str, context: dict, languages: tuple[str, ...] = ("en",),
           default: str = "en") -> Rendered:
    """``name.txt`` starts with a ``Subject:`` line, then a blank line, then the text body.

    In each of ``languages`` (a shared message's readers, the first reader's first), each from
    its translation or, where there is none, the ``default`` language's (then English); two
    languages that end at the same file give it once. The subject is the first language's."""
    files = dict.fromkeys(template_file(templates, f"{name}.txt", lang, default) for lang in languages)
    parts = [_render_one(templates, name, path, context) for path in files]
    if len(parts) == 1:
        return parts[0]
    return Rendered(subject=parts[0].subject, text="\n---\n\n".join(p.text for p in parts),
                    html="\n<hr>\n".join(p.html for p in parts))


def template_file(templates: Templates, filename: str, language: str, default: str = "en") -> str:
    """The file a reader of ``language`` gets: ``de/agenda.txt`` (or ``pt/`` for ``pt-BR``), else
    the default language's, else the English one at the top of the templates folder."""
    for tag in dict.fromkeys(t for t in (language, base_language(language), default, base_language(default)) if t):
        if tag == "en":
            return filename
        if f"{tag}/{filename}" in templates.files:
            return f"{tag}/{filename}"
    return filename


def _render_one(templates: Templates, name: str, text_file: str, context: dict) -> Rendered:
    folder = text_file.rpartition("/")[0]
    context = {**context, "language": folder or "en"}  # the language the `say` filter writes phrases in
    text = _render(templates, text_file, context)
    head, _, body = text.partition("\n\n")
    if not head.startswith("Subject:"):
        raise UserError(f"template {text_file} must start with a 'Subject: ...' line followed by a blank line")
    html_file = f"{folder}/{name}.html" if folder else f"{name}.html"
    if html_file in templates.files or not folder:
        html = _render(templates, html_file, context)
    else:  # a translation without its own HTML: the HTML says what its text says
        html = html_from_text(body)
    subject = " ".join(head[len("Subject:"):].split())
    return Rendered(subject=subject, text=body.strip() + "\n", html=framed(templates, html, folder or "en"))


def fill_in(text: str, context: dict) -> str:
    """A one-line template from the config or the roster (a location such as a personal meeting
    room URL), rendered in the sandbox; text without ``{{`` is taken as it is."""
    if "{" not in text:
        return text.strip()
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    return " ".join(env.from_string(text).render(context).split())


def framed(templates: Templates, body: str, language: str) -> str:
    """The e-mail's HTML set in templates/layout.html, its styles inlined into each element.

    Outlook (Word's renderer) and Gmail drop or ignore much of a ``<style>`` block, so every rule
    that can be is written onto its elements by css-inline (maintained, compiled, never fetches
    a remote stylesheet; premailer's last release was 2021 and it brings cssutils and requests);
    the block stays for what only it can say (dark mode's media query). The frame holds nothing
    but the body and its language: an invitation's HTML must not change when only its subject
    does ("Updated: …"), or a calendar backend would re-send the whole series for a skipped session."""
    page = _render(templates, LAYOUT, {"body": Markup(body), "lang": language})
    return css_inline.inline(page, keep_style_tags=True, load_remote_stylesheets=False)


def html_from_text(text: str) -> str:
    """A text body as HTML: paragraphs at blank lines, their lines flowed together again (a
    translation's text is wrapped for plain-text readers); an indented block (reply prompts,
    lists) keeps its lines, as do lines that start a list item or follow a colon."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if all(line.startswith("  ") for line in lines):
            blocks.append("<pre>" + escape("\n".join(line[2:] for line in lines)) + "</pre>")
            continue
        out = escape(lines[0].strip())
        for before, line in zip(lines, lines[1:]):
            kept = line[:1].isspace() or _ITEM.match(line) or before.rstrip().endswith((":", "："))
            glue = "<br>\n" if kept else "" if _cjk(before.rstrip()[-1:]) and _cjk(line.strip()[:1]) else " "
            out += glue + escape(line.strip())
        blocks.append(f"<p>{out}</p>")
    return "\n".join(blocks) + "\n"


_ITEM = re.compile(r"^\s*(?:\d{1,2}\.|[-*•])\s")


def _cjk(char: str) -> bool:
    """Chinese, Japanese and Korean text runs on without spaces between lines."""
    return bool(char) and ord(char) >= 0x2E80


def render_text(templates: Templates, name: str, context: dict, languages: tuple[str, ...] = ("en",),
                default: str = "en") -> str:
    files = dict.fromkeys(template_file(templates, name, lang, default) for lang in languages)
    return "\n---\n".join(_render(templates, path, {**context, "language": path.rpartition("/")[0] or "en"}).strip()
                           for path in files)


def _render(templates: Templates, name: str, context: dict) -> str:
    """A template's text, or a TemplateError naming its file and line: never a half-built email."""
    template, names = templates.template(name)
    try:
        return _rendered(template, names, context)
    except Exception as e:  # noqa: BLE001 — a template's fault is the admin's to fix, shown as such
        raise templatecheck.located(e, template.filename, context) from e


def _rendered(template: jinja2.Template, names: dict[str, Any], context: dict) -> str:
    """``template.render(context)``, given the template's globals as one dict (``names``): jinja
    copies its ChainMap of them into a new dict and a new set for every render, which was half
    the cost of rendering the layout."""
    env = template.environment
    try:
        return env.concat(template.root_render_func(  # type: ignore[attr-defined]
            new_context(env, template.name, template.blocks, context, False, names, None)))
    except Exception:  # noqa: BLE001 — as Template.render: the traceback points at the template's line
        env.handle_exception()


def pick_starter(templates: Templates, track: str, used: list[str]) -> Starter:
    """The first starter of the track this pair has not had; after the last one, start over."""
    starters = templates.starters.get(track.casefold()) or templates.starters["general"]
    fresh = [s for s in starters if s.id not in used]
    return fresh[0] if fresh else starters[len(used) % len(starters)]


def digest(*parts: object, length: int = 16) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:length]


def keyed(secret: bytes, *parts: object, length: int = 64) -> str:
    """HMAC-SHA256 of ``parts`` under ``secret`` (the installation's, ``secret.py``), hex: what
    an outsider who knows the pair ids and the organiser's domain still cannot compute."""
    return hmac.new(secret, "\x1f".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()[:length]


@lru_cache(maxsize=1 << 17)  # every job lists every pair's sessions, each with its token: 30,000 a tick at 100 pairs
def token(text: str, key: str | None) -> str:
    """``RM-`` + 6 characters naming a thread. ``key`` (hex) is the token key of the pair or series
    the thread belongs to; ``None`` for one made before the installation had a secret: its tokens
    stay the plain hashes they were, so its people's mail keeps its threads and nothing is re-sent.
    Base32 writes each 5 bytes as 8 characters of their own, so the first 6 characters come from
    the digest's first 5 bytes alone; ``hmac.digest`` is the one-call form of ``hmac.new``. Both
    give the same tokens at half the cost (70,000 a tick at 10,000 pairs; tests/test_compose.py)."""
    return _token_of(hmac.digest(bytes.fromhex(key), text.encode(), "sha256") if key else hashlib.sha256(text.encode()).digest())


def tokens(texts: Iterable[str], key: str | None) -> tuple[str, ...]:
    """``token`` of each of ``texts`` under one key (a series' sessions): the key decoded once."""
    if not key:
        return tuple(_token_of(hashlib.sha256(text.encode()).digest()) for text in texts)
    secret = bytes.fromhex(key)
    return tuple(_token_of(hmac.digest(secret, text.encode(), "sha256")) for text in texts)


_BASE32_PAIRS = tuple(a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _token_of(digest: bytes) -> str:
    """``"RM-"`` + ``base64.b32encode(digest)[:6]``: the digest's first 30 bits, ten at a time as
    two base32 characters (the standard library's encoder loops in Python: most of a token's cost)."""
    bits = int.from_bytes(digest[:4], "big") >> 2
    return "RM-" + _BASE32_PAIRS[bits >> 20] + _BASE32_PAIRS[(bits >> 10) & 1023] + _BASE32_PAIRS[bits & 1023]


def session_token(series: Mapping[str, Any], start: datetime) -> str:
    """The token of one session of ``series`` (a stored series: its ``uid`` and ``token_key``); stable."""
    return token(f"{series['uid']}|{start.astimezone(ZoneInfo('UTC')).isoformat()}", series.get("token_key"))


def thread_token(key: str | None, *parts: str) -> str:
    """The token of a thread that is not a session: a kickoff, a survey, a check-in (``key``: the pair's)."""
    return token("|".join(parts), key)


def kickoff_token(key: str | None, pair_id: str) -> str:
    """The token of a pair's kickoff thread, where consent and goal replies arrive."""
    return thread_token(key, "kickoff", pair_id)


def message_id(kind: str, key: str, domain: str, token: str = "", secret: bytes | None = None) -> str:
    """Derived from the idempotency ``key``, keyed by ``secret`` (None: a plain hash, for the
    iTIP mail of a series from before the secret)."""
    label = f"{kind}.{token}" if token else kind
    return f"<rm.{label}.{keyed(secret, key, length=16) if secret else digest(key)}@{domain}>"


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_MSG_ID_RE = re.compile(rf"<{_ATEXT}(?:\.{_ATEXT})*@(?:{_ATEXT}(?:\.{_ATEXT})*|\[[!-Z^-~]*\])>")


def thread_id(value: str) -> str:
    """``value`` if it is one RFC 5322 msg-id (``<left@right>``, printable ASCII, no space or
    line break, at most 250 characters), else ``""``.

    Inbound Message-IDs are copied into In-Reply-To and References; a sender chooses them, so an
    encoded line break could add a header of theirs or make the message unbuildable (and the
    pair's mail stall). Dropping an invalid one only loses threading in the recipient's client.
    """
    return value if len(value) <= 250 and _MSG_ID_RE.fullmatch(value) else ""


def domain_of(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class Envelope:
    key: str
    sender: str
    sender_name: str
    to: tuple[Person, ...]  # several share one message: each sees the others' replies
    date: datetime
    message_id: str
    in_reply_to: str = ""
    auto: bool = True  # Auto-Submitted: auto-generated — so vacation responders stay quiet


@dataclass(frozen=True)
class Attachment:
    """A file that rides along (the digest's HTML report): its name, MIME type and bytes."""

    filename: str
    mime: str  # "text/html"
    data: bytes


def build_email(env: Envelope, content: Rendered, calendar: tuple[str, bytes] | None = None,
                files: tuple[Attachment, ...] = ()) -> bytes:
    """The message as bytes. Built with the classic ``email.mime`` classes and serialised with
    the classic policy with CRLF line ends (headers are encoded as they are set, so the generator
    need not re-parse them): the same MIME as ``EmailMessage`` produces at a fifth of the cost,
    which was most of an agenda tick at 10,000 pairs (measured: bench/). The usual shape (text
    and HTML, nothing attached) is written directly, byte for byte what those classes write
    (``_alternative``)."""
    if not files and content.text and content.html and (calendar is None or (calendar[1] and calendar[0].isascii())):
        return _written(env, content, calendar)
    alternative = MIMEMultipart("alternative", boundary=_boundary(env.key, 0))
    alternative.attach(_text_part(content.text, "plain"))
    alternative.attach(_text_part(content.html, "html"))
    if calendar is None and not files:
        msg = alternative
    elif calendar is None:
        msg = MIMEMultipart("mixed", boundary=_boundary(env.key, 1))
        msg.attach(alternative)
    else:
        method, ics = calendar
        invite = MIMEBase("text", "calendar", method=method, charset="UTF-8")
        invite.set_payload(ics)
        encoders.encode_base64(invite)
        alternative.attach(invite)
        attachment = MIMEBase("application", "ics", name="invite.ics")
        attachment.set_payload(ics)
        encoders.encode_base64(attachment)
        attachment.add_header("Content-Disposition", "attachment", filename="invite.ics")
        msg = MIMEMultipart("mixed", boundary=_boundary(env.key, 1))
        msg.attach(alternative)
        msg.attach(attachment)
    for file in files:
        maintype, _, subtype = file.mime.partition("/")
        part = MIMEBase(maintype, subtype, name=file.filename)
        part.set_payload(file.data)
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=file.filename)
        msg.attach(part)
    _headers(msg, env, content.subject)
    return msg.as_bytes(policy=WIRE)


def _headers(msg: MIMEMultipart, env: Envelope, subject: str) -> None:
    for name, value in _header_items(env, subject):
        msg[name] = value


def _header_items(env: Envelope, subject: str) -> list[tuple[str, str]]:
    items = [("From", _sender(env.sender_name, env.sender)),
             ("To", ", ".join(_address(p.name, p.email) for p in env.to)),
             ("Subject", subject if subject.isascii() else Header(subject, "utf-8", header_name="Subject").encode()),
             ("Date", _date(env.date, env.date.utcoffset())), ("Message-ID", env.message_id)]
    in_reply_to = thread_id(env.in_reply_to)
    if in_reply_to:
        items += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    if env.auto:
        items.append(("Auto-Submitted", "auto-generated"))
    return [*items, ("X-RM-Key", env.key)]


def _written(env: Envelope, content: Rendered, calendar: tuple[str, bytes] | None) -> bytes:
    """``build_email``'s message without files, written as ``email.mime`` and the generator
    write it (headers folded by ``WIRE``, text as ``_text_part`` encodes it, the calendar as
    ``encoders.encode_base64``): the classes and the generator were two thirds of building an
    e-mail (bench/compare.py; tests/test_compose.py compares the two ways)."""
    parts = [_qp_part("plain", content.text), _qp_part("html", content.html)]
    if calendar is None:
        return _multipart("alternative", _boundary(env.key, 0), _header_items(env, content.subject), parts)
    method, ics = calendar
    invite, attachment = _calendar_heads(method)
    payload = _on_wire(base64.encodebytes(ics).decode("ascii"))  # as email.encoders writes it, in both parts
    return _multipart("mixed", _boundary(env.key, 1), _header_items(env, content.subject),
                      [_multipart("alternative", _boundary(env.key, 0), [], [*parts, invite + payload]),
                       attachment + payload])


def _multipart(subtype: str, boundary: str, headers: list[tuple[str, str]], parts: list[bytes]) -> bytes:
    head = [("Content-Type", f'multipart/{subtype}; boundary="{boundary}"'), ("MIME-Version", "1.0"), *headers]
    separator = f"\r\n--{boundary}\r\n".encode("ascii")
    return b"".join([_head(head), separator[2:], separator.join(parts), f"\r\n--{boundary}--\r\n".encode("ascii")])


def _qp_part(subtype: str, text: str) -> bytes:
    return _qp_head(subtype) + _on_wire(qp_body(text.encode("utf-8").decode("latin1")))


@lru_cache(maxsize=4)
def _qp_head(subtype: str) -> bytes:
    """A text part's head: the same for every message (written once, not 40,000 times a tick)."""
    return _head((("Content-Type", f'text/{subtype}; charset="utf-8"'), ("MIME-Version", "1.0"),
                  ("Content-Transfer-Encoding", "quoted-printable")))


@lru_cache(maxsize=8)
def _calendar_heads(method: str) -> tuple[bytes, bytes]:
    """The heads of an invitation's iTIP part and of its attachment, the same for every message of ``method``."""
    return (_head((("Content-Type", f'text/calendar; method="{quote(method)}"; charset="UTF-8"'),
                   ("MIME-Version", "1.0"), ("Content-Transfer-Encoding", "base64"))),
            _head((("Content-Type", 'application/ics; name="invite.ics"'), ("MIME-Version", "1.0"),
                   ("Content-Transfer-Encoding", "base64"), ("Content-Disposition", 'attachment; filename="invite.ics"'))))


def _head(fields: Iterable[tuple[str, str]]) -> bytes:
    """Header fields as the generator writes them (folded by ``WIRE``), and the blank line after them."""
    return b"".join([*(WIRE.fold_binary(name, value) for name, value in fields), b"\r\n"])


def _on_wire(payload: str) -> bytes:
    """An encoded body (ASCII, lines ending in ``\\n``) with the RFC 5322 line ends the message is sent with."""
    return payload.replace("\n", "\r\n").encode("ascii")


def _address(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8")


@lru_cache(maxsize=8)
def _sender(name: str, address: str) -> str:
    """The From header: the programme mailbox's, on every message (written once, not 40,000 times a tick)."""
    return _address(name, address)


@lru_cache(maxsize=8)
def _date(at: datetime, offset: timedelta | None) -> str:
    """The Date header: a tick's messages all carry the tick's time. ``offset`` tells apart two
    that name one moment in different zones (equal datetimes, different headers)."""
    return format_datetime(at)


def _text_part(text: str, subtype: str) -> MIMEText:
    """Quoted-printable UTF-8: readable in the raw message, safe for any line length."""
    return MIMEText(text, subtype, _QuotedPrintable())


class _QuotedPrintable(Charset):
    """UTF-8 in quoted-printable, written exactly as ``email.charset`` writes it, a line at a
    time with the lines remembered: every e-mail's HTML repeats the layout's style sheet, and
    encoding it again for each of 40,000 messages was a tenth of a first tick at 10,000 pairs
    (bench/compare.py; tests/test_compose.py compares the two on every e-mail of a programme
    and on random text)."""

    def __init__(self) -> None:
        super().__init__("utf-8")
        self.body_encoding = QP

    def body_encode(self, string: str | bytes | None) -> str | bytes | None:
        if not string:
            return string
        if isinstance(string, str):
            string = string.encode(self.output_charset)
        return qp_body(string.decode("latin1"))


_QP_EOL = re.compile(r"\r\n|\r|\n")
_QP_OTHER_EOL = "\x0b\x0c\x1c\x1d\x1e\x85"  # where else str.splitlines splits a Latin-1 text


def qp_body(body: str) -> str:
    """``email.quoprimime.body_encode(body)``: the same lines (quoting turns every other line
    separator ``str.splitlines`` knows into ``=XX``, so only these three split a line). A body
    without those others, which is nearly every one, is split by ``str.splitlines``: splitting
    with the pattern was two thirds of encoding an HTML part."""
    ends = body[-1] in "\r\n"
    if not any(eol in body for eol in _QP_OTHER_EOL):
        lines = body.splitlines()
    else:
        lines = _QP_EOL.split(body)
        if ends:
            lines.pop()
    return "\n".join([*map(_qp_line, lines), *([""] if ends else [])])


@lru_cache(maxsize=4096)
def _qp_line(line: str) -> str:
    """One line as ``email.quoprimime.body_encode`` writes it: quoted, then broken with soft
    line breaks at 76 characters (never inside an ``=XX``), trailing white space quoted."""
    line = line.translate(_QP_MAP)
    out = []
    start, last = 0, len(line) - 77
    while start <= last:
        stop = start + 75
        if line[stop - 2] == "=":
            out.append(line[start:stop - 1])
            start = stop - 2
        elif line[stop - 1] == "=":
            out.append(line[start:stop])
            start = stop - 1
        else:
            out.append(line[start:stop] + "=")
            start = stop
    if line and line[-1] in " \t":
        room = start - last
        if room >= 3:
            tail = quopri_quote(line[-1])
        elif room == 2:
            tail = line[-1] + "=\n"
        else:
            tail = "=\n" + quopri_quote(line[-1])
        out.append(line[start:-1] + tail)
    else:
        out.append(line[start:])
    return "\n".join(out)


_QP_MAP = [quopri_quote(chr(c)) if quopri_unsafe(c) and c not in b"\r\n" else chr(c) for c in range(256)]


def _boundary(key: str, n: int) -> str:
    """Boundaries from the idempotency key: rebuilding a message gives the very same bytes."""
    return f"rm-{digest(key, n, length=24)}"
