"""Keyless service accounts on the fake Workspace: workload identity federation's token exchange
and the IAM Credentials API's ``signBlob``, the two calls google-auth and rmdaemon make when the
delegation JWT is signed without a key file.

- ``POST /v1/token`` (sts.googleapis.com, RFC 8693): an external identity's token (a Kubernetes
  service account token, say, read from a file as the credential configuration names it) for a
  federated access token. The pool provider is the ``audience``; each subject token it accepts maps
  to a principal (``principal://iam.googleapis.com/projects/…/subject/…``). Errors are OAuth's
  (``invalid_grant``, ``invalid_target``).
- ``POST /v1/projects/-/serviceAccounts/{email}:signBlob``: the bytes signed with the account's
  Google-managed key (RS256), when the caller's principal holds Service Account Token Creator on
  it; otherwise 403 ``PERMISSION_DENIED`` in Google's words. The private half never leaves here;
  the token endpoint checks the JWT against the public half like any other key.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.servers.google.store import Store

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
SIGN_BLOB = re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):signBlob$")
LIFETIME = timedelta(seconds=3599)


@dataclass
class Federated:
    principal: str
    scopes: frozenset[str]
    expires: datetime


@dataclass
class Iam:
    store: Store
    providers: dict[str, dict[str, str]] = field(default_factory=dict)  # audience → subject token → principal
    keys: dict[str, tuple[str, RSAPrivateKey]] = field(default_factory=dict)  # account → (key id, Google-managed key)
    creators: dict[str, set[str]] = field(default_factory=dict)  # account → principals with Token Creator on it
    tokens: dict[str, Federated] = field(default_factory=dict)
    signed: int = 0

    def exchange(self, form: bytes) -> tuple[int, dict[str, Any]]:
        data = {k: v[0] for k, v in parse_qs(form.decode()).items()}
        if data.get("grant_type") != EXCHANGE:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        accepted = self.providers.get(data.get("audience", ""))
        if accepted is None:
            return 400, {"error": "invalid_target", "error_description": "The target service indicated by the "
                         "\"audience\" parameters is invalid. This might either be because the pool or provider is "
                         "disabled or deleted or because it doesn't exist."}
        principal = accepted.get(data.get("subject_token", ""))
        if principal is None:
            return 400, {"error": "invalid_grant", "error_description": "The provided subject token is invalid."}
        value = "ya29.d." + secrets.token_urlsafe(48)
        self.tokens[value] = Federated(principal, frozenset(data.get("scope", "").split()), self.store.now() + LIFETIME)
        return 200, {"access_token": value, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                     "token_type": "Bearer", "expires_in": 3599}

    def sign_blob(self, path: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        account = unquote(SIGN_BLOB.match(path).group(1))  # type: ignore[union-attr]
        caller = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        if caller is None or caller.expires <= self.store.now():
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if CLOUD_PLATFORM not in caller.scopes:
            return _error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
        if account not in self.keys or caller.principal not in self.creators.get(account, set()):
            return _error(403, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.signBlob' denied on resource "
                          "(or it may not exist).")
        key_id, key = self.keys[account]
        payload = base64.b64decode(json.loads(body or b"{}").get("payload", ""))
        self.signed += 1
        signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return 200, {"keyId": key_id, "signedBlob": base64.b64encode(signature).decode()}


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": message, "status": status}}
