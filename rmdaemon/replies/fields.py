"""Session-log fields from the words people actually write under the agenda's prompts.

Recognised: a labelled line (``Topics: pricing, hiring``), a label heading with a bullet or
numbered list under it (``Next steps -`` / ``1. book a room``), an inline answer under a quoted
prompt, in English, German, French, Spanish, Dutch and Portuguese. Ratings come as ``4``,
``4/5``, ``4 out of 5``, ``8/10``, ``★★★★☆`` or ``Note : 4``. "We didn't meet" and its kin mean
``attended: false``; notes about a session mean it happened. Text with no prompts at all gives
no fields — the body itself is the note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rmdaemon.replies.lexicon import alternation

LABELS: dict[str, tuple[str, ...]] = {
    "attended": (
        "attended", "attendance", "did you meet", "did we meet", "did the session happen",
        "session happened", "meeting happened", "met", "teilgenommen", "teilnahme",
        "stattgefunden", "getroffen", "anwesend", "présent", "présence", "participé",
        "participation", "séance tenue", "asistió", "asistencia", "asistimos", "nos reunimos",
        "aanwezig", "aanwezigheid", "deelgenomen", "compareceu", "presença", "presente",
        "participou", "reunião realizada", "参加", "出席",
    ),
    "topics": (
        "topics", "topic", "discussed", "what we discussed", "what did you talk about",
        "what we talked about", "conversation topics", "themes", "themen", "thema",
        "besprochen", "gesprächsthemen", "worüber habt ihr gesprochen", "sujets", "sujet",
        "thèmes", "thème", "discuté", "sujets abordés", "de quoi avez-vous parlé", "temas",
        "tema", "temas tratados", "de qué hablaron", "onderwerpen", "besproken", "thema's",
        "tópicos", "tópico", "assuntos", "assuntos discutidos", "sobre o que conversaram", "話題",
        "トピック", "テーマ",
    ),
    "learned": (
        "learned", "learnt", "what i learned", "what i learnt", "what did you learn",
        "learnings", "key learnings", "key learning", "takeaways", "takeaway", "key takeaways",
        "insights", "lessons learned", "gelernt", "was ich gelernt habe", "was hast du gelernt",
        "erkenntnisse", "erkenntnis", "appris", "ce que j'ai appris", "qu'avez-vous appris",
        "enseignements", "leçons", "aprendido", "lo que aprendí", "aprendí", "qué aprendiste",
        "aprendizajes", "lecciones", "geleerd", "wat ik geleerd heb", "wat heb je geleerd",
        "inzichten", "lessen", "aprendi", "o que aprendi", "aprendizado", "aprendizados",
        "aprendizagens", "lições", "o que você aprendeu", "学んだこと", "学び",
    ),
    "next_steps": (
        "next steps", "next step", "action items", "action points", "actions", "follow-ups",
        "follow ups", "follow-up", "to do", "todo", "to-dos", "todos", "homework",
        "nächste schritte", "naechste schritte", "nächster schritt", "aufgaben", "maßnahmen",
        "prochaines étapes", "prochaine étape", "prochaines actions", "à faire", "próximos pasos",
        "proximos pasos", "siguientes pasos", "acciones", "tareas", "volgende stappen",
        "volgende stap", "actiepunten", "acties", "próximos passos", "proximos passos",
        "próximas etapas", "ações", "tarefas", "次のステップ", "次回までに",
    ),
    "progress": ("progress", "goal progress", "progress towards goal", "progress towards the goal",
                 "progress towards our goal", "progress towards your goal", "how far towards the goal",
                 "fortschritt", "zielfortschritt", "progrès", "progreso", "voortgang", "progresso", "進捗",
                 "目標への進捗"),
    "goal": ("goal", "our goal", "pair goal", "ziel", "unser ziel", "objectif", "objetivo",
             "doel", "obiettivo", "目標"),
    "rating": (
        "rating", "rate", "score", "stars", "how would you rate it", "how would you rate",
        "how was it", "bewertung", "note", "sterne", "évaluation", "notation", "valoración",
        "puntuación", "calificación", "nota", "beoordeling", "cijfer", "avaliação",
        "classificação", "評価",
    ),
}
_LABEL_TO_FIELD = {w.casefold(): f for f, words in LABELS.items() for w in words}
_ALT = alternation(sorted(_LABEL_TO_FIELD, key=len, reverse=True))
# "Topics: …", "**Next steps** -", "1. Rating (1-5): 4", "Sujets : …", "Next steps?"
LABEL_RE = re.compile(
    r"^[\s>]*(?:[-*•#]+\s*)?(?:\d{1,2}[.)]\s+)?[*_]{0,2}(?P<label>" + _ALT + r")[*_]{0,2}"
    r"(?:\s*\([^)\n]{0,40}\))?[*_]{0,2}\s*(?:(?P<sep>[:：=?]|[-–—](?=\s|$))[*_]{0,2}\s*"
    r"(?P<value>.*?)|)\s*$",
    re.IGNORECASE,
)
# "Rating 4", "Bewertung ★★★★" — a rating label needs no colon before a bare rating.
LOOSE_RATING_RE = re.compile(
    r"^[\s*_]*(?:rating|rate|score|bewertung|note|évaluation|valoración|puntuación|calificación"
    r"|nota|beoordeling|cijfer|avaliação)[\s*_]+(?P<value>\d(?:[.,]\d)?(?:\s*(?:/|out of|of|von|sur|de"
    r"|van|em)\s*(?:5|10))?|[★☆⭐]{1,5}|\*{1,5})\s*[.!]?\s*$",
    re.IGNORECASE,
)
# "Attended yes." — the attendance label needs no colon before a plain yes or no either.
LOOSE_ATTENDED_RE = re.compile(
    r"^[\s*_]*(?:attended|met|teilgenommen|getroffen|présent|asistió|aanwezig|compareceu)[\s*_]+"
    r"(?P<value>yes|no|ja|nein|oui|non|sí|si|nee|sim|não|nao)[.!]?\s*$",
    re.IGNORECASE,
)
# Where a sentence of running text opens a field: "… creators. Learned: …" / "… budget. 4/5"
_SENTENCE_BREAK_RE = re.compile(r"(?<=[.;!?。])\s+(?=\S)")
_RUNNING_LABEL_RE = re.compile(
    r"^[*_]{0,2}(?:" + _ALT + r")[*_]{0,2}(?:\s*\([^)\n]{0,40}\))?[*_]{0,2}\s*[:：]", re.IGNORECASE)
_SPLIT_HINT_RE = re.compile(r"[;,、，；]| - ")
_SPLIT_RE = re.compile(r"\s*[;,、，；]\s*|\s+[-–•]\s+")
ITEM_RE = re.compile(r"^\s*(?:[-*•·–—+]|\d{1,2}[.)]|[a-z][.)])\s+(?P<item>.+?)\s*$", re.IGNORECASE)
_YES = frozenset("yes y yep yeah yup true ja jep jawohl oui ouais sí si sim claro 1 ✓ ✔ ✅ x done "
                 "attended met happened はい 参加 出席".split())
_NO = frozenset("no n nope false nein non nee não nao 0 ✗ ✘ ❌ cancelled canceled いいえ 欠席 "
                "missed skipped".split())
NOT_MET_RE = re.compile(
    r"\b(?:we )?(?:did ?n[o']t|did not|couldn'?t|could not|didn’t) (?:get to )?meet\b"
    r"|\b(?:session|meeting|call) (?:was |got |has been )?(?:cancell?ed|postponed|skipped)\b"
    r"|\bwe (?:had to )?(?:cancell?ed|skipped)\b|\bno[- ]show\b|\bdid ?n[o'’]t happen\b"
    r"|\bnicht (?:getroffen|stattgefunden)\b|\b(?:ist |wurde )?ausgefallen\b|\babgesagt\b"
    r"|\bpas (?:pu nous )?(?:vus|rencontrés|rencontré)\b|\b(?:réunion|séance|session) annulée\b"
    r"|\bno nos (?:reunimos|vimos)\b|\b(?:reunión|sesión) cancelada\b|\bniet doorgegaan\b"
    r"|\bgeannuleerd\b|\bniet (?:ontmoet|gesproken)\b|\bnão nos (?:encontramos|reunimos)\b"
    r"|\b(?:reunião|sessão) (?:foi )?cancelada\b",
    re.IGNORECASE,
)
_SCALE_RE = re.compile(
    r"(?<![\d.,])(\d{1,2}(?:[.,]\d)?)\s*(?:/|out of|of|von|sur|de|van|em|su|auf)\s*(5|10)(?!\d)",
    re.IGNORECASE,
)
_RANGE_RE = re.compile(r"^\(?\d\s*(?:-|–|—|to|bis|à|a|tot)\s*\d\)?\s*$", re.IGNORECASE)
_NUMBER_RE = re.compile(r"^\D{0,3}?(\d(?:[.,]\d)?)(?!\d)")
# "Note"/"nota" are also plain words in English/Spanish: only a bare rating counts after them.
_AMBIGUOUS_RATING_LABELS = frozenset({"note", "nota", "rate"})
_RATING_ONLY_RE = re.compile(r"^\s*(?:\d(?:[.,]\d)?(?:\s*(?:/|out of|sur|de|von)\s*(?:5|10))?|[★☆*]{1,5})\s*[.!]?\s*$")
_STARS = "★⭐🌟✭✮"
_STAR_RUN_RE = re.compile(f"[{_STARS}☆✩]{{2,}}|[{_STARS}]")


@dataclass(frozen=True)
class _Section:
    field: str
    label: str
    inline: str
    lines: tuple[str, ...]


def empty_fields() -> dict[str, object]:
    """The contract's five fields, plus ``goal`` (a kickoff reply's "Goal: …" line) and
    ``progress`` (1-5 towards the goal, asked at the midpoint and the end); the extras stay out of
    the contract JSON."""
    return {"attended": None, "topics": [], "learned": None, "next_steps": [], "rating": None,
            "goal": None, "progress": None}


def extract(body: str, answers: tuple[tuple[str, str], ...] = ()) -> dict[str, object]:
    """The contract's ``fields`` from a reply's visible text and its inline answers."""
    fields = empty_fields()
    sections = _sections(body.split("\n"))
    for prompt, answer in answers:
        sections.extend(_sections([prompt, *answer.split("\n")]))
    for section in sections:
        _apply(fields, section)
    if fields["rating"] is None:
        fields["rating"] = _free_rating(body)
    if fields["attended"] is None:
        fields["attended"] = _attended_from_text(body, fields)
    return fields


def _sections(lines: list[str]) -> list[_Section]:
    """Each labelled line with the lines under it, up to the next label."""
    found: list[_Section] = []
    current: tuple[str, str, str] | None = None
    under: list[str] = []
    if any(":" in s or "：" in s or "/" in s or " out of " in s for s in lines):
        lines = [piece for whole in lines for piece in _running_fields(whole)]
    for line in lines:
        start = _label_of(line)
        if start:
            if current:
                found.append(_Section(*current, tuple(under)))
            current, under = start, []
        elif current:
            under.append(line)
    if current:
        found.append(_Section(*current, tuple(under)))
    return found


def _running_fields(line: str) -> list[str]:
    """A line of running text cut where a sentence opens a field: "Attended yes. Topics: ads,
    creators. Learned: … 4/5" → one piece per field, as if written one a line. A label word
    inside a sentence ("I learned a lot") opens nothing: it must start a sentence and have a
    colon, or be a rating on its own ("4/5")."""
    if len(line) > 2000 or not (". " in line or "; " in line or "! " in line or "? " in line or "。" in line):
        return [line]  # one sentence: nothing to cut
    sentences = _SENTENCE_BREAK_RE.split(line)
    if len(sentences) == 1:
        return [line]
    pieces = [sentences[0]]
    for sentence in sentences[1:]:
        if _RUNNING_LABEL_RE.match(sentence) or LOOSE_ATTENDED_RE.match(sentence) or LOOSE_RATING_RE.match(sentence):
            pieces.append(sentence)
        elif _RATING_ONLY_RE.match(sentence) and not sentence.strip().rstrip(".!").isdigit():
            pieces.append(f"rating: {sentence}")  # "… budget. 4/5" rates the session
        else:
            pieces[-1] += " " + sentence
    return pieces


def _label_of(line: str) -> tuple[str, str, str] | None:
    """(field, label, inline value) when ``line`` opens a field, else None."""
    loose = LOOSE_RATING_RE.match(line) if len(line) < 80 else None
    if loose:
        return "rating", "rating", loose.group("value")
    loose = LOOSE_ATTENDED_RE.match(line) if len(line) < 40 else None
    if loose:
        return "attended", "attended", loose.group("value")
    match = LABEL_RE.match(line) if len(line) < 300 else None
    if not (match and _is_label(match)):
        return None
    label = match.group("label").casefold()
    name = _LABEL_TO_FIELD.get(label)  # None for case-folding oddities such as "Topicſ"
    return (name, label, match.group("value") or "") if name else None


def looks_like_field(line: str) -> bool:
    """Is this line a labelled answer ("Rating: 4")? Such a line is never part of a signature."""
    if len(line) >= 300:
        return False
    match = LABEL_RE.match(line)
    return bool(LOOSE_RATING_RE.match(line) or (match and match.group("sep")))


def _is_label(match: re.Match[str]) -> bool:
    """A label must end in a separator or stand alone (a heading); "Rate limits were …" is text."""
    return bool(match.group("sep")) or not (match.group("value") or "").strip()


def _apply(fields: dict[str, object], section: _Section) -> None:
    name = section.field
    if name in ("topics", "next_steps"):
        if not fields[name]:
            fields[name] = _items(section)
    elif name in ("learned", "goal"):
        if fields[name] is None:
            fields[name] = _paragraph(section) or None
    elif name == "progress":  # "how far towards <goal>?" at the midpoint and the end: 1-5 like a rating
        if fields[name] is None:
            fields[name] = parse_rating(_value(section.inline) or _paragraph(section))
    elif name == "rating":
        if fields[name] is None:
            value = _value(section.inline) or _paragraph(section)
            if section.label not in _AMBIGUOUS_RATING_LABELS or _RATING_ONLY_RE.match(value):
                fields[name] = parse_rating(value)
    elif name == "attended" and fields[name] is None:
        fields[name] = parse_yes_no(_value(section.inline) or _paragraph(section))


def _items(section: _Section) -> list[str]:
    """Comma/semicolon parts of the inline value, then the bullets or lines under the label.

    After an inline value only bullet lines continue the list, so "Topics: a, b" followed by
    "Rating 3" does not make "Rating 3" a topic.
    """
    inline = _value(section.inline)
    items = _split_inline(inline) if inline else []
    for line in section.lines:
        if not line.strip():
            if items:
                break
            continue
        item = ITEM_RE.match(line)
        if item:
            items.append(_clean(item.group("item")))
        elif inline:
            break
        else:
            items.extend(_split_inline(line))
    return [i for i in items if i]


def _value(text: str) -> str:
    """An inline value, or "" when it is the agenda's placeholder ("...", "1-5")."""
    text = text.strip()
    return "" if not text.strip(".…_ ") or _RANGE_RE.match(text) else text


def _split_inline(value: str) -> list[str]:
    """ "a, b; c" → three items; a dash between words splits too ("a - b")."""
    parts = _SPLIT_RE.split(value) if _SPLIT_HINT_RE.search(value) else [value]
    return [c for c in (_clean(p) for p in parts) if c]


def _paragraph(section: _Section) -> str:
    """The inline value and the lines under it until the first blank line after some text."""
    inline = _value(section.inline)
    out = [inline] if inline else []
    for line in section.lines:
        if not line.strip():
            if out:
                break
            continue
        out.append(line.strip())
    text = " ".join(out).strip().strip("*_").strip()
    return "" if not text.strip(".… ") else text


def _clean(text: str) -> str:
    return text.strip().strip("*_").strip().rstrip(".;,").strip()


def parse_yes_no(text: str) -> bool | None:
    words = re.findall(r"[\w'’]+|[✓✔✅✗✘❌]", text.lower())
    if not words:
        return None
    if NOT_MET_RE.search(text) or words[0] in _NO or words[:2] == ["did", "not"]:
        return False
    return True if words[0] in _YES else None


def parse_rating(text: str) -> int | None:
    """1–5 from "4", "4/5", "4 out of 5", "8/10", "4,5", "★★★★☆" or "****"; None otherwise."""
    text = text.strip()
    if not text or _RANGE_RE.match(text):
        return None  # the prompt itself ("Rating: 1-5") left unanswered
    stars = _STAR_RUN_RE.search(text)
    if stars:
        return _in_range(sum(stars.group(0).count(s) for s in _STARS))
    if re.fullmatch(r"\*{1,5}", text.split()[0]):
        return _in_range(len(text.split()[0]))
    scaled = _SCALE_RE.search(text)
    if scaled:
        return _scaled(scaled.group(1), scaled.group(2))
    number = _NUMBER_RE.match(text)
    return _scaled(number.group(1), "5") if number else None


def _scaled(value: str, scale: str) -> int | None:
    number = float(value.replace(",", "."))
    if scale == "10":
        number /= 2
    return _in_range(int(number + 0.5))


def _in_range(value: int) -> int | None:
    return value if 1 <= value <= 5 else None


def _free_rating(body: str) -> int | None:
    """A rating written in a sentence ("I'd give it 4 out of 5", "★★★★☆"), if there is one."""
    found = {m.group(0) for m in _SCALE_RE.finditer(body)} | {
        m.group(0) for m in _STAR_RUN_RE.finditer(body)
    }
    return parse_rating(found.pop()) if len(found) == 1 else None


def _attended_from_text(body: str, fields: dict[str, object]) -> bool | None:
    """"We didn't meet" → False; notes, topics or a rating mean the session took place."""
    if NOT_MET_RE.search(body):
        return False
    if fields["topics"] or fields["learned"] or fields["next_steps"] or fields["rating"]:
        return True
    return None
