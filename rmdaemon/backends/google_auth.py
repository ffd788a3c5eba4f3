"""A service account's key → delegated credentials and an ``AuthorizedSession``, with google-auth
as it comes (nothing patched): the token endpoint is the key file's own ``token_uri``.

Scopes, least privilege (docs/google.md says why each):
- ``calendar.events``: create, change and read the programme user's events (not its settings,
  not other calendars' sharing);
- ``calendar.events.freebusy``: free/busy of the participants, nothing of their events' contents;
- ``gmail.modify``: send, read the inbox and label handled messages; never permanent deletion.
"""

from __future__ import annotations

import json
from pathlib import Path

from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from rmdaemon.backends.http_common import TimeoutSession
from rmdaemon.errors import UserError

SCOPES = ("https://www.googleapis.com/auth/calendar.events",
          "https://www.googleapis.com/auth/calendar.events.freebusy",
          "https://www.googleapis.com/auth/gmail.modify")


def delegated(key_json: str, user: str, where: str) -> tuple[service_account.Credentials, str]:
    """Credentials that act as ``user`` (domain-wide delegation) and the account's client id (what
    the Admin console's delegation names); a key that is not a service account key is a UserError."""
    try:
        info = json.loads(key_json)
    except ValueError:
        raise UserError(f"{where}: the service account key is not JSON; download a JSON key for the service account "
                        "(Cloud console → IAM → Service accounts → Keys → Add key → JSON)") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise UserError(f"{where}: the key is of type {kind!r}; domain-wide delegation needs a service account key "
                        "(\"type\": \"service_account\"), see docs/google.md")
    try:
        credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES, subject=user)
    except (ValueError, KeyError) as exc:
        raise UserError(f"{where}: the service account key cannot be used ({exc}); download a new JSON key") from None
    return credentials, str(info.get("client_id", ""))


def session(credentials: service_account.Credentials, ca_file: Path | None, timeout: float) -> AuthorizedSession:
    """Requests and token requests both through sessions that trust ``ca_file`` (or the system's
    CAs) and ignore the environment's proxies and CA bundles."""
    verify: str | bool = str(ca_file) if ca_file else True
    token_session = TimeoutSession(verify, timeout)
    authorized = AuthorizedSession(credentials, auth_request=Request(token_session))
    authorized.trust_env, authorized.verify = False, verify
    return authorized
