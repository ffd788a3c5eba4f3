"""What the suite needs from outside Python, and what happens when it is missing.

A developer's machine may lack Dovecot or Chromium, and a fresh clone has no ``../shared`` beside
it: there the tests that need them skip, each saying how to install what is missing, and the run
ends with one line counting what was skipped and why (``tests/conftest.py``). ``.ci/run`` installs
everything and sets ``RMDAEMON_STRICT_TESTS=1``: then a missing prerequisite fails the test, so a
green CI run cannot hide a check that never ran.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

STRICT_ENV = "RMDAEMON_STRICT_TESTS"
SHARED = Path(__file__).resolve().parents[2] / "shared"  # beside the checkout, never inside it
MISSING = " missing: "  # every skip for a missing prerequisite reads "<name> missing: <how to get it>"


@dataclass(frozen=True)
class Prerequisite:
    name: str  # what the end-of-run count calls it
    install: str  # how to get it, as the skip message says


EWS_SCHEMAS = Prerequisite("EWS schemas", f"put Microsoft's messages.xsd and types.xsd in {SHARED / 'ews-schema'}")
SHARED_CORPORA = Prerequisite("shared corpora", f"put the eml, ics and replies corpora in {SHARED / 'corpora'}")
DOVECOT = Prerequisite("Dovecot", "apt-get install dovecot-imapd")
CHROMIUM = Prerequisite("Chromium", "apt-get install chromium fonts-liberation")
CJK_FONTS = Prerequisite("CJK fonts", "apt-get install fonts-noto-cjk (Chromium draws Japanese as empty boxes without it)")
LIBICAL = Prerequisite("libical GI bindings", "apt-get install gir1.2-ical-3.0 python3-gi")
ICAL_JS = Prerequisite("ICAL.js", "npm ci --prefix tests/js --no-audit --no-fund (make test runs it)")


class PrerequisiteMissing(UserWarning):
    """A check inside a test that did not run (the rest of the test did); counted at the end."""


def strict() -> bool:
    """True under ``.ci/run``: nothing the suite needs may be missing there."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def missing(what: Prerequisite, detail: str = "") -> NoReturn:
    """Skip this test (fail it in strict mode), saying what is missing and how to install it."""
    message = f"{what.name}{MISSING}{what.install}" + (f" ({detail})" if detail else "")
    if strict():
        pytest.fail(f"{STRICT_ENV} is set: {message}", pytrace=False)
    pytest.skip(message)


def partly_missing(what: Prerequisite, check: str) -> None:
    """One check inside a test cannot run: fail in strict mode, else warn and let the rest run."""
    message = f"{what.name}{MISSING}{what.install} ({check} not checked)"
    if strict():
        pytest.fail(f"{STRICT_ENV} is set: {message}", pytrace=False)
    warnings.warn(message, PrerequisiteMissing, stacklevel=2)


def skip_summary(reasons: list[str]) -> str:
    """One line: how many tests skipped, grouped by the prerequisite (or reason) behind each."""
    groups = Counter(_group(reason) for reason in reasons)
    parts = ", ".join(f"{count} {reason}" for reason, count in groups.most_common())
    hint = " (pytest -rs says how to install each missing one)" if any(MISSING in r for r in reasons) else ""
    return f"skipped {len(reasons)}: {parts}{hint}"


def _group(reason: str) -> str:
    if MISSING in reason:
        return reason.split(MISSING)[0] + " missing"
    if " declare" in reason:  # the contract's tests of a capability the backend does (not) declare
        return "contract tests of a capability the backend does not have"
    return reason
