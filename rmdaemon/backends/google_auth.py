"""Delegated credentials and an ``AuthorizedSession``, with google-auth as it comes (nothing
patched). The delegation JWT (``sub`` = the programme user) is signed one of two ways:

- with a service account's JSON key (``key_file`` / ``key_env``), exchanged at the key file's own
  ``token_uri``;
- keyless (``service_account``): the daemon's own identity comes from Application Default
  Credentials (``google.auth.default``: a workload identity federation config, GKE Workload
  Identity or a VM's attached account through the metadata server), and the JWT is signed with the
  service account's Google-managed key through the IAM Credentials API's ``signBlob``.
  google-auth's ``service_account.Credentials`` still builds the JWT, asks ``{oauth_base}/token`` and
  refreshes; only the signer is ours, because ``google.auth.iam.Signer`` calls a fixed host and
  sleeps between its own retries, and ``impersonated_credentials`` (``subject=``, through
  ``signJwt``) fixes both the IAM host and the token endpoint.

Scopes, least privilege (docs/google.md says why each):
- ``calendar.events``: create, change and read the programme user's events (not its settings,
  not other calendars' sharing);
- ``calendar.events.freebusy``: free/busy of the participants, nothing of their events' contents;
- ``gmail.modify``: send, read the inbox and label handled messages; never permanent deletion.
The keyless route's own identity asks for ``cloud-platform`` only to call ``signBlob``; what it may
do is limited by IAM (Service Account Token Creator on that one account).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import google.auth
import requests
from google.auth import crypt
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from rmdaemon.backends.http_common import TimeoutSession
from rmdaemon.errors import UserError

if TYPE_CHECKING:
    from rmdaemon.config import GoogleBackendSettings

SCOPES = ("https://www.googleapis.com/auth/calendar.events",
          "https://www.googleapis.com/auth/calendar.events.freebusy",
          "https://www.googleapis.com/auth/gmail.modify")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
SIGN_REFUSED = "sign_refused"  # the TokenError.error of a refused signBlob
NO_IDENTITY = "no_identity"  # … and of the daemon's own identity getting no token


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
                        "(\"type\": \"service_account\"), or no key at all with [backend.google] service_account "
                        "(keyless), see docs/google.md")
    try:
        credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES, subject=user)
    except (ValueError, KeyError) as exc:
        raise UserError(f"{where}: the service account key cannot be used ({exc}); download a new JSON key") from None
    return credentials, f"client id {info.get('client_id', '')}"


def keyless(settings: GoogleBackendSettings, tokens: Request) -> tuple[service_account.Credentials, str]:
    """Credentials that act as the programme user, their JWT signed as ``settings.service_account``
    by the IAM Credentials API under the daemon's own identity (Application Default Credentials)."""
    where = f"[backend.google] service_account = {settings.service_account}"
    try:
        identity, _project = google.auth.default(scopes=[CLOUD_PLATFORM], request=tokens)
    except auth_exceptions.DefaultCredentialsError as exc:
        raise UserError(f"{where}: no identity of the daemon's own to sign with ({exc}); set GOOGLE_APPLICATION_CREDENTIALS "
                        "to a workload identity federation config, or run where the metadata server gives one "
                        "(GKE Workload Identity, a VM's service account), see docs/google.md") from None
    except auth_exceptions.GoogleAuthError as exc:
        raise UserError(f"{where}: Application Default Credentials could not be loaded ({exc})") from None
    signer = IamSigner(session(identity, tokens), settings.iam_base, settings.service_account, settings.timeout_seconds)
    credentials = service_account.Credentials(signer, settings.service_account, f"{settings.oauth_base}/token", scopes=SCOPES,
                                              subject=settings.user)
    return credentials, f"the Unique ID of {settings.service_account} (Cloud console → IAM → Service accounts)"


class IamSigner(crypt.Signer):
    """Signs with a service account's Google-managed key: IAM Credentials ``signBlob`` at ``base``,
    called as the daemon's own identity (which needs Service Account Token Creator on the account).
    A refusal is a RefreshError whose body names it, so ``check --online`` can explain it; nothing is
    retried here (a failed token fails the tick's work as temporary, and the next tick asks again)."""

    def __init__(self, source: AuthorizedSession, base: str, account: str, timeout: float) -> None:
        self.source, self.timeout = source, timeout
        self.url = f"{base.rstrip('/')}/v1/projects/-/serviceAccounts/{quote(account, safe='@')}:signBlob"

    @property
    def key_id(self) -> str | None:
        return None  # not known before signing; Google finds the key without it

    def sign(self, message: str | bytes) -> bytes:
        payload = base64.b64encode(message.encode() if isinstance(message, str) else message).decode()
        try:
            response = self.source.post(self.url, json={"payload": payload}, timeout=self.timeout)
        except (requests.RequestException, auth_exceptions.TransportError) as exc:
            raise auth_exceptions.TransportError(f"no answer from the IAM Credentials API: {exc}") from exc
        except auth_exceptions.GoogleAuthError as exc:  # the workload's own token refused (STS, metadata server)
            text = str(exc.args[0]) if exc.args else str(exc)
            raise auth_exceptions.RefreshError(f"the daemon's own identity got no token: {text}", {
                "error": NO_IDENTITY, "error_description": text}) from exc
        if response.status_code != 200:
            error = _json(response).get("error") or {}
            text = f"HTTP {response.status_code} {error.get('status', '')}: {error.get('message', response.text[:200])}"
            raise auth_exceptions.RefreshError(f"signBlob refused: {text}", {"error": SIGN_REFUSED, "error_description": text})
        return base64.b64decode(_json(response)["signedBlob"])


def _json(response: requests.Response) -> dict:  # type: ignore[type-arg]
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def token_request(ca_file: Path | None, timeout: float) -> Request:
    """google-auth's transport for token requests, through a session that trusts ``ca_file`` (or
    the system's CAs) and ignores the environment's proxies and CA bundles."""
    return Request(TimeoutSession(str(ca_file) if ca_file else True, timeout))


def session(credentials: google.auth.credentials.Credentials, tokens: Request) -> AuthorizedSession:
    """The API session: the same trust as the token requests, no environment."""
    authorized = AuthorizedSession(credentials, auth_request=tokens)
    authorized.trust_env, authorized.verify = False, tokens.session.verify
    return authorized
