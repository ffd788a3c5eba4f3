"""Google's OAuth 2.0 token endpoint for service accounts (RFC 7523 JWT bearer grant).

The assertion is checked for real: its ``kid``, when it has one, names the service account's key
(a JWT signed through the IAM Credentials API's ``signBlob`` has none), the RS256
signature is verified with that key's public half (PyJWT), ``iss`` is the account, ``aud`` Google's
token endpoint, the lifetime at most an hour and not over; ``sub`` must be a user of the domain and every
requested scope must be granted to the account's client id by domain-wide delegation. The errors
are Google's own words (``invalid_grant``, ``unauthorized_client``), which ``check --online`` explains.
Access tokens carry (user, scopes) and expire.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import jwt

from tests.servers.google.store import ServiceAccount, Store

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://oauth2.googleapis.com/token"  # what Google checks, whichever token_uri was asked
LIFETIME = timedelta(seconds=3599)


@dataclass
class Token:
    account: ServiceAccount
    user: str
    scopes: frozenset[str]
    expires: datetime


class OAuth:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.tokens: dict[str, Token] = {}
        self.issued = 0

    def token(self, form: bytes, audience: str = AUDIENCE) -> tuple[int, dict[str, Any]]:
        data = {k: v[0] for k, v in parse_qs(form.decode()).items()}
        if data.get("grant_type") != GRANT:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        try:
            header = jwt.get_unverified_header(data.get("assertion", ""))
            unverified = jwt.decode(data.get("assertion", ""), options={"verify_signature": False})
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token."}
        account = self.store.accounts.get(str(unverified.get("iss", "")))
        if account is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"}
        if "kid" in header and header["kid"] != account.key_id:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        try:
            claims = jwt.decode(data["assertion"], account.public_key, algorithms=["RS256"], audience=audience,
                                issuer=account.email, options={"require": ["exp", "iat", "aud", "iss"]})
        except jwt.InvalidSignatureError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes)."}
        return self._grant(account, claims)

    def _grant(self, account: ServiceAccount, claims: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        user = str(claims.get("sub", "")).casefold()
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not user:
            return 400, {"error": "invalid_scope", "error_description": "rmdaemon's fake Google only serves delegated tokens."}
        if not scopes or not scopes <= account.delegated:
            return 401, {"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve access "
                         "tokens using this method, or client not authorized for any of the scopes requested."}
        if user not in self.store.users:
            return 400, {"error": "invalid_grant", "error_description": "Invalid email or User ID"}
        value = "ya29.c." + secrets.token_urlsafe(48)
        self.tokens[value] = Token(account, user, scopes, self.store.now() + LIFETIME)
        self.issued += 1
        return 200, {"access_token": value, "expires_in": 3599, "token_type": "Bearer"}

    def bearer(self, authorization: str) -> Token | None:
        token = self.tokens.get(authorization.removeprefix("Bearer ").strip()) if authorization.startswith("Bearer ") else None
        if token is None or token.expires <= self.store.now():
            return None
        return token

    def expire_all(self) -> None:
        for token in self.tokens.values():
            token.expires = self.store.now() - timedelta(seconds=1)
