"""Finding a template's mistakes before a person gets a half-written email: Jinja syntax, unknown
filters and tests, names that are not the template's variables (rmdaemon/template_vars.py), and
what rendering on the sample context meets. Each problem names the file, the line, the name and,
where one is close, what was meant.

``located`` turns an error met while rendering for real into the same kind of message, so
``preview`` and the jobs report a template's fault as the admin's to fix, never as a bug.

``content_key``, ``known_clean`` and ``remember_clean`` let a fresh process skip a check whose
answer cannot have changed: every ``rmdaemon run`` is a new process, and checking the 121
template files of seven languages was 0.8 s of every tick's CPU (docs/performance.md).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

import babel
import jinja2
from jinja2 import meta, nodes

import rmdaemon
from rmdaemon import template_vars
from rmdaemon.atomic import atomic_write
from rmdaemon.errors import UserError

log = logging.getLogger(__name__)

DOC = "docs/templates.md"


class TemplateError(UserError):
    """A template could not be rendered (exit 2): the admin's template, not the code, is at fault."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_file(env: jinja2.Environment, name: str) -> list[str]:
    """Problems of one template file as the loader finds it (the admin's copy or the shipped one)."""
    try:
        source, filename, _ = env.loader.get_source(env, name)
        env.get_template(name)  # compiles: syntax errors, unknown filters and tests
    except jinja2.TemplateSyntaxError as e:
        return [syntax_problem(e, env)]
    doc = template_vars.by_file().get(name.rpartition("/")[2])  # a translation (de/agenda.txt) has its original's
    if doc is None:
        return []
    unknown = _unknown_names(env.parse(source), doc)
    if unknown:
        return [f"{filename}: line {line}: '{var}' is not a variable of {name}{did_you_mean(var, doc.names)} "
                f"(its variables: {', '.join(sorted(doc.names))}; see {DOC})" for var, line in unknown]
    if doc.sample is None:
        return []
    context = doc.sample()
    try:
        env.get_template(name).render(context)
    except Exception as e:  # noqa: BLE001 — whatever rendering meets is the template's fault here
        return [located(e, filename, context).message + " (rendering the sample context of " + DOC + ")"]
    return []


def _unknown_names(tree: nodes.Template, doc: template_vars.TemplateDoc) -> list[tuple[str, int]]:
    """(name, first line) of each name the template reads that its context does not have."""
    unknown = meta.find_undeclared_variables(tree) - doc.names - {"loop", "range", "dict", "lipsum", "cycler",
                                                                   "joiner", "namespace"}
    lines = {}
    for node in tree.find_all(nodes.Name):
        if node.name in unknown and node.ctx == "load":
            lines.setdefault(node.name, node.lineno)
    return sorted(lines.items(), key=lambda item: item[1])


def syntax_problem(e: jinja2.TemplateSyntaxError, env: jinja2.Environment) -> str:
    found = re.match(r"No (filter|test) named '([^']+)'", e.message or "")
    if found:
        kind, name = found.groups()
        known = env.filters if kind == "filter" else env.tests
        return f"{e.filename}: line {e.lineno}: unknown {kind} '{name}'{did_you_mean(name, known)}"
    return f"{e.filename}: line {e.lineno}: template syntax error: {e.message}; fix the Jinja2 tag on that line"


def located(e: Exception, filename: str | None, context: dict) -> TemplateError:
    """A rendering failure as a TemplateError naming the template's file and line."""
    if isinstance(e, jinja2.TemplateSyntaxError):
        return TemplateError(f"{e.filename}: line {e.lineno}: {e.message}")
    line = _template_line(e.__traceback__, filename)
    where = f"{filename}: line {line}" if line else f"{filename}"
    message = str(e)
    attribute = re.search(r"'([\w.]+) object' has no attribute '([^']+)'", message)
    hint = did_you_mean(attribute.group(2), _attributes(context, attribute.group(1))) if attribute else ""
    if isinstance(e, jinja2.UndefinedError) and not attribute:
        name = re.match(r"'([^']+)' is undefined", message)
        hint = did_you_mean(name.group(1), context) if name else ""
    return TemplateError(f"{where}: {message}{hint}")


def _template_line(tb: TracebackType | None, filename: str | None) -> int | None:
    """Jinja maps a rendering frame to the template's own file and line; take the deepest."""
    line = None
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _attributes(context: dict, type_name: str) -> set[str]:
    """The public fields of the context's values of that type (one level down): what ``x.y`` could have meant."""
    found: set[str] = set()
    for value in context.values():
        for inner in (value, *getattr(value, "__dict__", {}).values()):
            if f"{type(inner).__module__}.{type(inner).__qualname__}" == type_name:
                found |= {a for a in dir(inner) if not a.startswith("_")}
    return found


def content_key(folders: Sequence[str]) -> str:
    """One digest of everything a check's answer depends on: the path and bytes of every file in
    the template ``folders`` (an edit that keeps a file's size and mtime still counts), and the
    code that checks them: rmdaemon's source and version, and the versions of Python, Jinja and
    Babel (the sample renderings write dates with it)."""
    versions = (rmdaemon.__version__, sys.version, jinja2.__version__, babel.__version__)
    digest = hashlib.sha256("\0".join(versions).encode())
    for part in (*_contents([os.path.dirname(rmdaemon.__file__)], ".py"), *_contents(folders, "")):
        digest.update(part)
    return digest.hexdigest()


def _contents(folders: Sequence[str], suffix: str) -> Iterator[bytes]:
    """Each folder's name, then each of its files (ending in ``suffix``) as its relative path, size and bytes."""
    for folder in folders:
        yield f"\0folder {folder}\0".encode()
        for path in sorted(_files(folder, suffix)):
            try:
                data = Path(path).read_bytes()
            except OSError:
                data = b"\0unreadable"  # the check names it; the key only has to differ
            yield f"\0{os.path.relpath(path, folder)}\0{len(data)}\0".encode()
            yield data


def _files(folder: str, suffix: str) -> Iterator[str]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        yield from (os.path.join(root, name) for name in names if name.endswith(suffix))


def known_clean(remembered: Path, key: str) -> bool:
    """Whether the check last passed on exactly these files and code (``key``). A missing,
    unreadable or corrupted file only means checking again."""
    try:
        return remembered.read_bytes().strip() == key.encode()
    except OSError:
        return False


def remember_clean(remembered: Path, key: str) -> None:
    """Note that the check passed for ``key``, atomically. A file that cannot be written only
    means the next process checks again: never an error of the tick."""
    try:
        atomic_write(remembered, key.encode() + b"\n", mode=0o600)
    except OSError as e:
        log.debug("cannot remember the template check in %s: %s", remembered, e)
