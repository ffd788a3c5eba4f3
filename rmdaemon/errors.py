"""The one error type a user ever sees.

Anything the user can fix (config, roster, templates, arguments, a locked or corrupt state file)
is raised as a UserError from wherever it is found; ``cli`` is the only place that presents it.
Every other exception is a bug and gets a traceback there.
"""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """A problem the user can fix. ``problems`` lists every finding, each naming file, place and fix."""

    exit_code = 2

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return "\n".join([self.message, *(f"  - {p}" for p in self.problems)])


class BackendError(Exception):
    """A backend operation failed in a way worth retrying on a later tick (network, throttling).

    ``permanent`` marks failures that retrying cannot fix (a rejected recipient); jobs record
    those against the pair instead of retrying forever. Only a refusal of the one message or
    series is permanent: ``setup`` marks what is wrong with the installation instead (a refused
    credential, a missing permission, a TLS error, a service switched off, a spent daily limit),
    the same for every item, so it is never permanent — the work waits and goes once the admin
    has fixed it (``check --online`` names the fix), and the run and ``status`` say so.
    """

    def __init__(self, message: str, *, permanent: bool = False, setup: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent and not setup
        self.setup = setup
