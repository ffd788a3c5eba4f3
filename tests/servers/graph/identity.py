"""The identity platform's side: OpenID discovery and the token endpoint for client credentials.

A secret is compared; a certificate credential is a JWT assertion that is checked for real: the
key is found by the SHA-256 (or SHA-1) thumbprint in its header among the app's registered
certificates, the signature is verified with that certificate's public key (PyJWT), and the
audience, issuer, subject and lifetime must be right. Errors carry Entra ID's AADSTS codes.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import hashes

from tests.servers.graph.store import App, Store

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME = timedelta(seconds=3599)


@dataclass
class Token:
    app: App
    expires: datetime


class Identity:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.tokens: dict[str, Token] = {}
        self.issued = 0

    # -- discovery --------------------------------------------------------------------------
    def openid_configuration(self, base: str, tenant: str) -> tuple[int, dict[str, Any]]:
        if tenant not in self.store.tenants:
            return 400, _error("invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you have the "
                                                      "correct tenant ID and are signing into the correct cloud.")
        root = f"{base}/{tenant}"
        return 200, {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "issuer": f"{root}/v2.0",
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "tenant_region_scope": "EU",
        }

    # -- tokens -----------------------------------------------------------------------------
    def token(self, base: str, tenant: str, form: bytes, graph_base: str) -> tuple[int, dict[str, Any]]:
        data = {k: v[0] for k, v in parse_qs(form.decode()).items()}
        if tenant not in self.store.tenants:
            return 400, _error("invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if data.get("grant_type") != "client_credentials":
            return 400, _error("unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        app = self.store.apps.get(data.get("client_id", ""))
        if app is None or app.tenant_id != tenant:
            return 400, _error("unauthorized_client", 700016, f"Application with identifier '{data.get('client_id')}' was "
                                                              f"not found in the directory '{tenant}'.")
        refused = self._credential_problem(app, data, f"{base}/{tenant}/oauth2/v2.0/token")
        if refused is not None:
            return 401, refused
        scopes = data.get("scope", "").split()
        if f"{graph_base}/.default" not in scopes:
            return 400, _error("invalid_resource", 500011, f"The resource principal named {scopes[0] if scopes else '(none)'} "
                                                          f"was not found in the tenant named {tenant}.")
        value = "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + secrets.token_urlsafe(48)
        self.tokens[value] = Token(app, self.store.clock() + LIFETIME)
        self.issued += 1
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": value}

    def app_for(self, authorization: str) -> tuple[App | None, str]:
        """(app, "") for a valid bearer token, else (None, why)."""
        if not authorization.startswith("Bearer "):
            return None, "Access token is empty."
        token = self.tokens.get(authorization[7:].strip())
        if token is None:
            return None, "IDX14100: JWT is not well formed."
        if token.expires <= self.store.clock():
            return None, "Lifetime validation failed, the token is expired."
        return token.app, ""

    def expire_all(self) -> None:
        for token in self.tokens.values():
            token.expires = self.store.clock() - timedelta(seconds=1)

    def _credential_problem(self, app: App, data: dict[str, str], audience: str) -> dict[str, Any] | None:
        if "client_secret" in data:
            if data["client_secret"] in app.secrets:
                return None
            return _error("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the "
                                                     "request is the client secret value, not the client secret ID, for a "
                                                     f"secret added to app '{app.client_id}'.")
        if data.get("client_assertion_type") == ASSERTION_TYPE and data.get("client_assertion"):
            return self._assertion_problem(app, data["client_assertion"], audience)
        return _error("invalid_client", 7000218, "The request body must contain the following parameter: "
                                                 "'client_assertion' or 'client_secret'.")

    def _assertion_problem(self, app: App, assertion: str, audience: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return _error("invalid_client", 700024, "Client assertion is not within its valid time range or is malformed.")
        cert = _find_certificate(app, header)
        if cert is None:
            return _error("invalid_client", 700027, "The certificate with identifier used to sign the client assertion "
                                                    f"is not registered on application. [Reason - The key was not found., "
                                                    f"Thumbprint of key used by client: '{header.get('x5t#S256') or header.get('x5t')}']")
        try:
            claims = jwt.decode(assertion, cert.public_key(), algorithms=["PS256", "RS256"], audience=audience,
                                issuer=app.client_id, options={"require": ["exp", "aud", "iss", "sub"]})
        except jwt.InvalidSignatureError:
            return _error("invalid_client", 700027, "Client assertion failed signature validation.")
        except jwt.PyJWTError as exc:
            return _error("invalid_client", 700024, f"Client assertion is not valid: {exc}.")
        if claims.get("sub") != app.client_id:
            return _error("invalid_client", 700023, "Client assertion subject does not match the client id.")
        return None


def _find_certificate(app: App, header: dict[str, Any]) -> Any:
    for cert in app.certificates:
        if header.get("x5t#S256") and _b64url(cert.fingerprint(hashes.SHA256())) == header["x5t#S256"].rstrip("="):
            return cert
        if header.get("x5t") and _b64url(cert.fingerprint(hashes.SHA1())) == header["x5t"].rstrip("="):
            return cert
    return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _error(error: str, code: int, text: str) -> dict[str, Any]:
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return {"error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": str(trace), "correlation_id": str(correlation),
            "error_uri": f"https://login.microsoftonline.com/error?code={code}"}
