"""``check --online`` for Google: what the token endpoint and the APIs said, as sentences an
admin can act on (docs/google.md walks through each fix)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

from rmdaemon.backends.google_auth import NO_IDENTITY, SCOPES, SIGN_REFUSED
from rmdaemon.backends.google_http import GoogleError, TokenError
from rmdaemon.errors import BackendError

if TYPE_CHECKING:
    from rmdaemon.config import GoogleBackendSettings

SECTION = "[backend.google]"


def key_exposed(key_file: Path | None) -> str | None:
    """A key anyone on the machine can read acts as any user of the domain (domain-wide delegation)."""
    if key_file is None:
        return None
    try:
        mode = key_file.stat().st_mode
    except OSError:
        return None  # reading it already failed with its own message
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"key readable by others: {key_file} has mode {stat.filemode(mode)}; the key can act as any user of the "
                f"domain within its scopes — chmod 600 {key_file} (or use a systemd credential), see docs/google.md")
    return None


def token_problem(exc: TokenError, settings: GoogleBackendSettings, client_id: str) -> str:
    """``client_id``: how the Admin console's delegation names the account ("client id 1234…")."""
    if exc.error == SIGN_REFUSED:
        return (f"cannot sign as {settings.service_account}: the IAM Credentials API refused ({exc.description}); grant "
                f"the daemon's own identity the Service Account Token Creator role on {settings.service_account} and "
                f"enable the IAM Service Account Credentials API in its project (docs/google.md)")
    if exc.error == NO_IDENTITY:
        return (f"no identity of its own: the daemon's Application Default Credentials got no token ({exc.description}); "
                f"check the workload identity federation config GOOGLE_APPLICATION_CREDENTIALS names, its pool provider "
                f"and the token file it reads (docs/google.md)")
    if exc.error == "unauthorized_client":
        return (f"delegation not granted: Google refused a token for {settings.user} ({exc.description}); in the Admin "
                f"console (Security → Access and data control → API controls → Manage domain-wide delegation) add "
                f"{client_id} with exactly these scopes: {','.join(SCOPES)} (docs/google.md)")
    if exc.error == "invalid_grant" and "user" in exc.description.lower():
        return (f"no such user: {settings.user} is not a user of the Workspace domain ({exc.description}); check "
                f"{SECTION} user or [program] organizer")
    if exc.error == "invalid_grant" and ("signature" in exc.description.lower() or "not found" in exc.description.lower()):
        return (f"bad key: Google does not know the key of the service account ({exc.description}); it was deleted or "
                f"belongs to another account — create a new JSON key and point {SECTION} key_file/key_env at it")
    return f"no token for {settings.user}: {exc}"


def api_problem(exc: GoogleError, settings: GoogleBackendSettings, what: str) -> str:
    api = "Gmail API" if "mail" in what else "Google Calendar API"
    if exc.reason == "accessNotConfigured":
        return (f"API not enabled: the {api} is off in the service account's Cloud project; enable it (Cloud console → "
                f"APIs & Services → Library → {api} → Enable) and wait a few minutes")
    if exc.reason in ("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
        return (f"wrong scopes: the token may not be used for {what}; the domain-wide delegation must list "
                f"{','.join(SCOPES)} (docs/google.md)")
    if exc.status == 404 or exc.reason == "notFound":
        return f"no such mailbox or calendar: {settings.user} has no {api.split()[-2]} ({exc.reason}); check {SECTION} user"
    return f"Google refused {what} for {settings.user}: {exc}"


def transport_problem(exc: BackendError, settings: GoogleBackendSettings) -> str:
    text = str(exc)
    if "TLS error" in text or "SSL" in text or "CERTIFICATE" in text.upper():
        return f"TLS error: {text}; check {SECTION} ca_file (a TLS-inspecting proxy needs its CA there) and api_base"
    return f"unreachable: {text}; check the network, {SECTION} api_base and the key file's token_uri"
