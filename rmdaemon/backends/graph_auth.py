"""App-only tokens for Graph from msal: a client secret, or a certificate's signed assertion.

msal is used as it comes: the authority is ``{authority_host}/{tenant_id}`` (national clouds and
the tests only change that host), ``instance_discovery=False`` so no request goes to the public
cloud's discovery endpoint for another host, and the HTTP session is ours (no environment
proxies or CA bundles). The application object is built on the first token request, because
msal's constructor already fetches the OpenID configuration: building the backend sends nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jwt
import msal
import requests

from rmdaemon.backends.graph_http import TokenError
from rmdaemon.backends.http_common import tls_error
from rmdaemon.errors import BackendError, UserError

_PEM_KEY = re.compile(r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----", re.S)
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class Credential:
    """Exactly one of ``secret`` and ``certificate_path`` is set."""

    secret: str = ""
    certificate_path: Path | None = None
    certificate_password: str = ""

    def for_msal(self) -> Any:
        """The ``client_credential`` argument msal expects."""
        if self.certificate_path is None:
            return self.secret
        extra = {"passphrase": self.certificate_password} if self.certificate_password else {}
        if self.certificate_path.suffix.lower() in (".pfx", ".p12"):
            return {"private_key_pfx_path": str(self.certificate_path), "public_certificate": True, **extra}
        text = self.certificate_path.read_text(encoding="utf-8")
        key, cert = _PEM_KEY.search(text), _PEM_CERT.search(text)
        assert key and cert, "checked by load_credential"
        # With the certificate msal signs PS256 and names the key by its SHA-256 thumbprint (x5t#S256).
        return {"private_key": key.group(0), "public_certificate": cert.group(0), **extra}


def load_credential(path: Path, password: str, where: str) -> Credential:
    """Check a certificate file while the config is read, so a wrong path is a UserError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{where} certificate_path: cannot read {path} ({exc.strerror})") from None
    if path.suffix.lower() not in (".pfx", ".p12"):
        text = data.decode("utf-8", "replace")
        if not _PEM_KEY.search(text) or not _PEM_CERT.search(text):
            raise UserError(f"{where} certificate_path: {path} must hold both the private key and the certificate "
                            "(PEM: cat key.pem cert.pem > app.pem), or be a .pfx/.p12 file")
    return Credential(certificate_path=path, certificate_password=password)


def certificate_problems(credential: Credential, now: datetime) -> list[str]:
    """What is wrong with a PEM certificate credential before Entra is even asked."""
    if credential.certificate_path is None or credential.certificate_path.suffix.lower() in (".pfx", ".p12"):
        return []
    from cryptography import x509

    text = credential.certificate_path.read_text(encoding="utf-8")
    match = _PEM_CERT.search(text)
    if match is None:
        return [f"bad certificate: no certificate in {credential.certificate_path}"]
    cert = x509.load_pem_x509_certificate(match.group(0).encode())
    if cert.not_valid_after_utc < now.astimezone(timezone.utc):
        return [f"bad certificate: {credential.certificate_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
                "upload a new certificate to the app registration and point certificate_path at it"]
    return []


class TokenSource:
    """Hands out access tokens, cached by msal until shortly before they expire."""

    def __init__(self, *, authority_host: str, tenant_id: str, client_id: str, credential: Credential, scope: str,
                 session: requests.Session) -> None:
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self.client_id, self.credential, self.scope, self.session = client_id, credential, scope, session
        self._app: msal.ConfidentialClientApplication | None = None

    def __call__(self, refresh: bool = False) -> str:
        app = self._application()
        if refresh:
            app.remove_tokens_for_client()
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except (ValueError, TypeError, jwt.PyJWTError) as exc:  # a key msal cannot sign with (Entra wants RSA)
            raise TokenError("invalid_client_credential", f"the certificate's key cannot sign an assertion: {exc}") from exc
        except requests.exceptions.SSLError as exc:
            raise tls_error(self.authority, exc) from exc
        except requests.exceptions.RequestException as exc:
            raise BackendError(f"no answer from {self.authority}: {type(exc).__name__}: {exc}") from exc
        if "access_token" not in result:
            raise TokenError(str(result.get("error", "unknown")), str(result.get("error_description", "")),
                             result.get("error_codes") or ())
        return str(result["access_token"])

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is not None:
            return self._app
        try:
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self.credential.for_msal(),
                authority=self.authority,
                http_client=self.session,
                instance_discovery=False,
            )
        except requests.exceptions.SSLError as exc:
            raise tls_error(self.authority, exc) from exc
        except requests.exceptions.RequestException as exc:
            raise BackendError(f"no answer from {self.authority}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # msal: unknown tenant / authority, or an unusable key
            raise TokenError("invalid_authority_or_credential", str(exc)) from exc
        return self._app
