"""Commands, consent and sharing answers: short lines at the top of what the sender wrote.

A command counts only when it stands alone at the top of the new text (after an optional
greeting): the line's first clause may hold polite words around the command ("please skip
next week", "Bitte aussetzen") but nothing else, so "Stop by my desk tomorrow" or a "skip" in
the middle of notes is never a command. Quoted text never reaches this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rmdaemon.replies import lexicon as lx

COMMAND_WORDS: dict[str, tuple[str, ...]] = {
    "skip": ("skip", "überspringen", "ueberspringen", "aussetzen", "auslassen", "sauter",
             "saltar", "omitir", "overslaan", "pular"),
    "pause": ("pause", "pausieren", "pausar", "pausa", "pauze", "pauzeren", "mettre en pause",
              "suspendre"),
    "resume": ("resume", "unpause", "restart", "fortsetzen", "weitermachen", "reprendre",
               "reanudar", "retomar", "hervatten", "continuar", "weiter"),
    "stop": ("stop", "unsubscribe", "stopp", "beenden", "abmelden", "arrêter", "arreter",
             "detener", "parar", "stoppen", "afmelden", "terminar", "end"),
    "reschedule": ("reschedule", "verschieben", "reporter", "déplacer", "deplacer",
                   "reprogramar", "verzetten", "verplaatsen", "reagendar", "remarcar", "move"),
}
# Words allowed around a command without making the line a sentence.
FILLER = frozenset("""
please pls plz kindly can could we i i'd id would like to let's lets us want need go ahead and
just the a an our my this that next upcoming one session sessions meeting meetings week weeks
time today tomorrow now for it programme program mentoring all thanks thank you thx cheers ok
okay sorry bitte wir ich möchte möchten würde würden gerne gern die das den der nächste nächstes
nächsten woche sitzung termin treffen diese dieses danke mal merci s'il vous plaît plait on
peut la le les prochaine séance semaine réunion cette svp por favor favor podemos la el esta
próxima proxima sesión sesion reunión reunion gracias graag alsjeblieft aub kunnen we de het
volgende sessie afspraak deze bedankt pode podemos a o próxima sessão sessao reunião semana
obrigado obrigada
""".split())
_ARG_LEADS = frozenset("to for until till until' auf à a para naar op le on al bis jusqu'à tot".split())
CONSENT_WORDS = {
    "yes": ("yes", "yes please", "i'm in", "im in", "i am in", "count me in", "sure", "happy to",
            "gladly", "agreed", "i agree", "opt in", "ja", "ja gerne", "gerne", "oui",
            "volontiers", "sí", "si", "claro", "con gusto", "ja graag", "sim", "com certeza", "はい",
            "参加します"),
    "no": ("no", "no thanks", "no thank you", "not now", "not interested", "opt out", "nein",
           "nein danke", "non", "non merci", "no gracias", "nee", "nee bedankt", "não",
           "nao", "não obrigado", "não obrigada", "いいえ", "辞退します"),
}
SHARE_WORDS = {
    True: ("share notes", "share my notes", "share", "notes can be shared", "ok to share",
           "you can share", "notizen teilen", "teilen", "partager les notes", "partager",
           "compartir notas", "compartir", "notities delen", "delen", "compartilhar notas",
           "compartilhar", "partilhar"),
    False: ("private", "keep private", "keep it private", "keep notes private", "keep my notes private",
            "don't share", "do not share", "dont share", "privat", "nicht teilen", "privé",
            "ne pas partager", "privado", "no compartir", "niet delen", "não compartilhar",
            "vertraulich", "confidential"),
}
_GREETING_PREFIX_RE = re.compile(
    r"^(?:hi|hello|hey|dear|hallo|liebe[rs]?|bonjour|salut|hola|hoi|beste|olá|oi|ciao|hej)\b"
    r"[^,!.:\n]{0,30}[,!:]\s+(?=\S)", re.IGNORECASE)
_WORD_RE = re.compile(r"[\w'’]+", re.UNICODE)
_CLAUSE_END_RE = re.compile(r"[,.;!?:(\n]|\s[-–—]\s")
_MAX_WORDS = 12
_MAX_TOP_COMMAND_LINES = 3  # "YES" / "SHARE NOTES" / "Goal: ..." — commands open a reply


def _by_first_word(words: dict[str, tuple[str, ...]]) -> dict[str, dict[str, list[str]]]:
    """first word → {key: its phrases that start with that word}, both in ``words``' order.

    Every reply asks whether its opening lines are a command or a consent answer: looking up a
    line's first word is a tenth of comparing it with every phrase (and the first phrase that
    fits still wins, as the order is kept)."""
    found: dict[str, dict[str, list[str]]] = {}
    for key, phrases in words.items():
        for phrase in phrases:
            found.setdefault(phrase.split()[0], {}).setdefault(key, []).append(phrase)
    return found


_COMMANDS_BY_FIRST = _by_first_word(COMMAND_WORDS)
_CONSENT_BY_FIRST = _by_first_word(CONSENT_WORDS)


@dataclass(frozen=True)
class Command:
    name: str
    arg: str | None


def top_lines(body: str) -> list[str]:
    """The first non-blank line (without a leading "Hi Sam,"), and the next one when the first
    is only a greeting."""
    lines = [s.strip() for s in body.split("\n") if s.strip()]
    first = _GREETING_PREFIX_RE.sub("", lines[0]) if lines else ""
    if lines and lx.GREETING_RE.match(lines[0]) and len(lines) > 1:
        return [first, lines[1]]
    return [first] if first else []


def find_command(body: str) -> Command | None:
    for line in top_lines(body):
        found = command_in_line(line)
        if found:
            return found
    return None


def command_in_line(line: str) -> Command | None:
    """The command a short standalone line asks for, or None when it is ordinary text."""
    words = _words(line)
    if not words or len(words) > _MAX_WORDS:
        return None
    for start in range(len(words)):
        if start and words[start - 1] not in FILLER:
            return None
        found = _command_at(words, start)
        if found:
            name, length = found
            return _with_argument(name, line, words, start + length)
    return None


def _command_at(words: list[str], start: int) -> tuple[str, int] | None:
    for name, options in _COMMANDS_BY_FIRST.get(words[start], {}).items():
        for option in options:
            parts = option.split()
            if words[start:start + len(parts)] == parts:
                return name, len(parts)
    return None


def _with_argument(name: str, line: str, words: list[str], after: int) -> Command | None:
    """Skip/stop/resume take only filler after them; pause and reschedule may say when."""
    rest = words[after:]
    clause = _words(_CLAUSE_END_RE.split(line, 1)[0])
    rest_in_clause = rest[: max(0, len(clause) - after)]
    if name in ("reschedule", "pause"):
        arg = _argument(line, words, after)
        if words[after - 1] == "move" and "to" not in rest[:4]:
            return None
        if name == "pause" and arg and not (rest and rest[0] in _ARG_LEADS):
            if not all(w in FILLER for w in rest_in_clause):
                return None
            arg = None
        return Command(name, arg)
    if all(w in FILLER for w in rest_in_clause):
        return Command(name, None)
    return None


def _argument(line: str, words: list[str], after: int) -> str | None:
    """The text after the command word, without a leading 'to'/'for': "Thu 14:00", "next week"."""
    if after >= len(words):
        return None
    command_word = words[after - 1]
    at = line.lower().find(command_word)
    tail = line[at + len(command_word):] if at >= 0 else ""
    if tail.lstrip()[:1] in (",", ";", "!", "?", "("):
        return None
    tail = re.split(r"[,;!?(\n]", tail, 1)[0].strip(" :-–—").strip()
    first = tail.split(" ", 1)
    if first and first[0].lower() in _ARG_LEADS:
        tail = first[1] if len(first) > 1 else ""
    tail = tail.strip().rstrip(".!")
    return tail or None


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD_RE.findall(text)]


def find_consent(body: str) -> str | None:
    """'yes' or 'no' when the reply opens with an answer to the opt-in question."""
    for line in top_lines(body):
        clause = " ".join(_words(_CLAUSE_END_RE.split(line, 1)[0]))
        # A phrase the clause is, or opens with, starts with the clause's first word.
        for answer, phrases in _CONSENT_BY_FIRST.get(clause.split(" ", 1)[0], {}).items():
            if clause in phrases or any(clause.startswith(p + " ") and _only_filler(clause, p)
                                        for p in phrases):
                return answer
    return None


def _only_filler(clause: str, phrase: str) -> bool:
    return all(w in FILLER or w in ("share", "notes", "private") for w in clause[len(phrase):].split())


def find_share(body: str) -> bool | None:
    """True for "SHARE NOTES", False for "PRIVATE": a line of its own among the command lines that
    open the reply ("YES" then "SHARE NOTES"), never a word further down (a "- share" bullet in
    the next steps is not consent)."""
    lines = [s.strip() for s in body.split("\n") if s.strip()]
    if lines and lx.GREETING_RE.match(lines[0]) and len(lines) > 1:
        lines = lines[1:]
    for line in lines[:_MAX_TOP_COMMAND_LINES]:
        words = " ".join(_words(line))
        for answer, phrases in SHARE_WORDS.items():
            if words in phrases or _consent_then_share(words, phrases):
                return answer
        if not (find_consent(line) or command_in_line(line)):
            return None  # the first line of ordinary text ends the commands
    return None


def _consent_then_share(words: str, phrases: tuple[str, ...]) -> bool:
    """ "YES, share notes" / "yes please, and keep it private": a consent answer, then a choice."""
    first, _, rest = words.partition(" ")
    if first not in ("yes", "ja", "oui", "sí", "si", "sim", "no", "nein", "non", "nee", "não"):
        return False
    kept = rest.split()
    while kept and kept[0] in ("please", "and", "but", "bitte", "und", "et", "y", "en", "e"):
        kept.pop(0)
    return " ".join(kept) in phrases
