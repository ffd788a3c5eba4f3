"""How an e-mail greets a person: the name a colleague would use, not the roster's full name.

The roster's ``mentor_preferred_name`` / ``mentee_preferred_name`` always wins. Without one the
name is derived from the full name and the person's language (docs/templates.md, "Names"):

1. Written in a Japanese, Chinese or Korean script, the family name comes first. Japanese
   colleagues are addressed by family name ("山田 太郎" → "山田", which Japanese mail writes
   "山田さん"); Chinese and Korean colleagues by the full name, the polite neutral form at work.
2. A Japanese-speaking person with a Latin-script name: the last word, the family name of a
   romanised name written given name first ("Taro Yamada" → "Yamada", "Yamadaさん" in
   Japanese mail). A roster that writes "Yamada Taro" sets the preferred name instead.
3. "Family, Given" (a comma): the part after the comma.
4. Hungarian and Vietnamese speakers write the family name first and are addressed by the given
   name, which is the last word.
5. Otherwise the first word, after titles such as Dr., Prof., Mr or Frau.

The Japanese templates add さん to every name with the ``san`` filter; the name itself carries no
honorific, so a German e-mail about the same person does not borrow one.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

TITLES = frozenset("dr dr. prof prof. mr mr. mrs mrs. ms ms. mx mx. herr frau sr sr. sra sra. m. mme mme. "
                   "dhr dhr. mevr mevr. sir dame".split())
_CJK_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")


def base_language(tag: str) -> str:
    """``pt-BR`` → ``pt``: the part of a BCP 47 tag that picks a naming convention."""
    return tag.replace("_", "-").split("-")[0].casefold()


def _script_of(text: str) -> str:
    """``cjk`` when the name uses a CJK script, ``kana`` when it has Japanese kana, else ``latin``."""
    kinds = {unicodedata.name(c, "").split(" ")[0] for c in text if c.isalpha()}
    if kinds & {"HIRAGANA", "KATAKANA"}:
        return "kana"
    return "cjk" if kinds & set(_CJK_SCRIPTS) else "latin"


@lru_cache(maxsize=1 << 16)
def address_name(full_name: str, preferred: str = "", language: str = "") -> str:
    """The name to greet ``full_name`` with in an e-mail (the rules in this module's docstring).
    Remembered: every e-mail names both people several times (a twentieth of an agenda tick)."""
    if preferred.strip():
        return preferred.strip()
    name = " ".join(full_name.split())
    if not name:
        return name
    lang, script = base_language(language), _script_of(name)
    words = name.split(" ")
    if script != "latin":
        return words[0] if (lang == "ja" or script == "kana") and len(words) > 1 else name
    if "," in name:
        after = name.split(",", 1)[1].strip()
        return after.split(" ")[0] if after else name.split(",")[0]
    words = [w for w in words if w.casefold() not in TITLES] or words
    if lang in ("hu", "vi", "ja") and len(words) > 1:
        return words[-1]
    return re.sub(r"[,;]$", "", words[0])
