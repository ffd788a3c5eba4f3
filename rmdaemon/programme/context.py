"""What a job's entry point receives for one tick, and how a job keeps one pair's failure to
that pair. Helpers below the jobs take the arguments they use, not a Context."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rmdaemon import compose
from rmdaemon.backends.base import Backend
from rmdaemon.compose import Templates
from rmdaemon.config import Settings
from rmdaemon.errors import UserError
from rmdaemon.templatecheck import TemplateError
from rmdaemon.model import JobResult, Pair
from rmdaemon.programme.messages import Mailer
from rmdaemon.store import Store

log = logging.getLogger("rmdaemon.jobs")


@dataclass
class Context:
    store: Store
    backend: Backend
    settings: Settings
    pairs: list[Pair]  # the roster as read this tick
    templates: Templates
    now: datetime  # aware UTC
    secret: bytes  # the installation's (secret.py): keys tokens, Message-IDs and new series UIDs
    cache: dict[str, Any] = field(default_factory=dict)  # per-tick memos of pure work (slot scoring)

    def roster(self) -> dict[str, Pair]:
        return {p.pair_id: p for p in self.pairs}

    @property
    def mail(self) -> Mailer:
        return Mailer(self.settings.program, self.templates, self.now, self.secret)

    def pair_key(self, doc: dict | None, pair_id: str) -> str | None:
        """The token key of a pair's own threads (kickoff, nudges, surveys, check-ins), kept in its
        record; ``doc`` None: a pair not yet recorded. A record without one was made before the
        installation had a secret: its threads keep their old tokens."""
        return compose.keyed(self.secret, "pair", pair_id) if doc is None else doc.get("token_key")


@contextmanager
def isolated(result: JobResult, pair_id: str) -> Iterator[None]:
    """One pair's share of a job. A bug met there (odd data, a template that fails for this pair
    only) is logged with the pair and kept for ``status``, and the job goes on with the other
    pairs; the pair is tried again next tick. A UserError (a broken template, say) concerns
    every pair, so it still stops the tick and is shown to the admin; a template that renders on
    its sample but not on this pair's values (``check`` passed it) fails this pair only, and no
    half-rendered email of it is sent."""
    try:
        yield
    except TemplateError as e:  # fails for this pair's values only (check passed the sample): the admin's to fix
        log.error("%s: pair %s: %s", result.name, pair_id, e)
        result.add("template errors")
        result.problems.append(f"{pair_id}: {e}"[:300])
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 — isolation is the point
        log.exception("%s: pair %s could not be handled", result.name, pair_id)
        result.add("pair errors")
        result.problems.append(f"{pair_id}: {type(e).__name__}: {e}"[:300])
