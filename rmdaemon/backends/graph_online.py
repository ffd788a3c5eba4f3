"""``check --online`` for Graph: what Entra ID and Exchange Online said, as sentences an admin can act on.

The identity platform answers with AADSTS codes; Exchange with Graph error codes. The ones that
matter when setting up an app with RBAC for Applications are named here; anything else is quoted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rmdaemon.backends.graph_http import MAILBOX_MISSING, GraphError, TokenError
from rmdaemon.errors import BackendError

if TYPE_CHECKING:
    from rmdaemon.config import GraphBackendSettings

SECTION = "[backend.graph]"
ROLES = "Application Calendars.ReadWrite, Application Mail.ReadWrite and Application Mail.Send"


def token_problem(exc: TokenError, settings: GraphBackendSettings) -> str:
    text = exc.description.splitlines()[0] if exc.description else exc.error
    codes = set(exc.codes) | {int(c) for c in _aadsts(text)}
    if codes & {7000215, 7000222}:
        return (f"bad client secret: Entra ID refused the secret of app {settings.client_id} ({text}); create a new "
                f"client secret in the app registration and put it where {SECTION} client_secret_env/_file points")
    if codes & {700027, 700024, 7000274, 700021, 7000273} or exc.error == "invalid_client_credential":
        return (f"bad certificate: Entra ID refused the certificate assertion of app {settings.client_id} ({text}); "
                f"upload the certificate of {SECTION} certificate_path to the app registration (Certificates & secrets)")
    if codes & {700016}:
        return (f"unknown app: no application {settings.client_id} in tenant {settings.tenant_id} ({text}); "
                f"check {SECTION} client_id and tenant_id")
    if codes & {90002, 900023} or exc.error == "invalid_authority_or_credential":
        return (f"unknown tenant or authority: {settings.authority_host}/{settings.tenant_id} ({text}); "
                f"check {SECTION} tenant_id and authority_host")
    if codes & {500011}:
        return (f"wrong resource: {settings.graph_base} is not Microsoft Graph in this cloud ({text}); "
                f"check {SECTION} graph_base")
    return f"no token from {settings.authority_host}: {exc}"


def mailbox_problem(exc: GraphError, settings: GraphBackendSettings, what: str) -> str:
    mailbox = settings.mailbox
    if exc.code == "NoPermissionsInAccessToken" or (exc.status == 401 and "permission" in str(exc).lower()):
        return (f"consent missing: the token of app {settings.client_id} carries no permission for {what}; assign it "
                f"the roles {ROLES} through Exchange RBAC for Applications, scoped to {mailbox} (docs/graph.md)")
    if exc.code in ("ErrorAccessDenied", "AccessDenied", "Authorization_RequestDenied") or exc.status == 403:
        return (f"mailbox out of scope: Exchange denied app {settings.client_id} {what} in {mailbox} ({exc.code}); "
                f"the management scope of its RBAC assignments must include {mailbox} — check with "
                f"Test-ServicePrincipalAuthorization (docs/graph.md)")
    if exc.code in MAILBOX_MISSING or exc.status == 404:
        return (f"no such mailbox: {mailbox} is not an Exchange Online mailbox Graph can reach ({exc.code}); "
                f"check [program] organizer or {SECTION} mailbox")
    return f"Graph refused {what} in {mailbox}: {exc}"


def transport_problem(exc: BackendError, settings: GraphBackendSettings) -> str:
    text = str(exc)
    if "TLS error" in text or "SSL" in text or "CERTIFICATE" in text.upper():
        return (f"TLS error: {text}; check {SECTION} ca_file (a TLS-inspecting proxy needs its CA there), "
                "authority_host and graph_base")
    return f"unreachable: {text}; check the network, {SECTION} authority_host and graph_base"


def _aadsts(text: str) -> list[str]:
    import re

    return re.findall(r"AADSTS(\d+)", text)
