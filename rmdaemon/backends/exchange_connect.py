"""Settings + secret → an exchangelib Account, and exchangelib's failures → our errors.

Endpoint, auth type and version are always explicit, so exchangelib sends no autodiscover or
version-probing requests. Two retry policies: the jobs use ``FaultTolerance`` bounded by the
configured budget; ``check --online`` fails fast so a wrong password is reported at once instead
of being retried as throttling (exchangelib treats a 401 as "back off" under FaultTolerance).
"""

from __future__ import annotations

import contextlib
import ssl
from typing import TYPE_CHECKING

import requests.exceptions
from exchangelib import DELEGATE, IMPERSONATION, Account, Configuration, Credentials, EWSTimeZone, FailFast, FaultTolerance, Identity
from exchangelib import errors as ews_errors
from exchangelib.credentials import OAuth2Credentials
from exchangelib.transport import BASIC, NTLM, OAUTH2
from exchangelib.version import EXCHANGE_2013, EXCHANGE_2013_SP1, EXCHANGE_2016, EXCHANGE_2019, Version

from rmdaemon.errors import BackendError

if TYPE_CHECKING:
    from rmdaemon.config import ExchangeBackendSettings

VERSIONS = {"Exchange2013": EXCHANGE_2013, "Exchange2013_SP1": EXCHANGE_2013_SP1, "Exchange2016": EXCHANGE_2016,
            "Exchange2019": EXCHANGE_2019}  # fmt: skip
AUTH_TYPES = {"basic": BASIC, "ntlm": NTLM, "oauth2": OAUTH2}
ACCESS = {"delegate": DELEGATE, "impersonation": IMPERSONATION}
# Failures worth retrying on a later tick; everything else about one item is permanent.
TRANSIENT = (
    ews_errors.RateLimitError,
    ews_errors.ErrorServerBusy,
    ews_errors.ErrorTimeoutExpired,
    ews_errors.ErrorInternalServerTransientError,
    ews_errors.ErrorInternalServerError,
    ews_errors.TransportError,
    ews_errors.MalformedResponseError,
    ews_errors.ErrorMailboxStoreUnavailable,
    ews_errors.ErrorConnectionFailed,
    ews_errors.SOAPError,
    OSError,
    requests.exceptions.RequestException,
)
# Failures of the installation, not of the item: the login refused, locked out or expired, the
# mailbox unreachable, full, or not ours to send as (Full Access without Send As). The same for
# every item, so never permanent: the work waits for the admin's fix (``check --online`` names it).
SETUP = (
    ews_errors.UnauthorizedError,
    ews_errors.ErrorAccessDenied,
    ews_errors.ErrorSendAsDenied,
    ews_errors.ErrorImpersonateUserDenied,
    ews_errors.ErrorImpersonationFailed,
    ews_errors.ErrorNonExistentMailbox,
    ews_errors.ErrorNotDelegate,
    ews_errors.ErrorQuotaExceeded,
    ews_errors.ErrorSubmissionQuotaExceeded,
    ews_errors.ErrorAccountDisabled,
    ews_errors.ErrorPasswordExpired,
)


def open_account(settings: ExchangeBackendSettings, secret: str, *, fail_fast: bool = False) -> Account:
    """An Account on the programme mailbox; constructing it sends no request."""
    policy = FailFast() if fail_fast else FaultTolerance(max_wait=settings.retry_budget_seconds)
    credentials = _credentials(settings, secret)
    if fail_fast:
        # exchangelib caches one Protocol (with its retry policy) per endpoint + credentials; an extra
        # attribute gives the probe its own cache entry, so it never inherits the patient policy.
        credentials.purpose = "check-online"
    config = Configuration(
        service_endpoint=settings.service_endpoint,
        credentials=credentials,
        auth_type=AUTH_TYPES[settings.auth],
        version=Version(build=VERSIONS[settings.version]),
        retry_policy=policy,
        max_connections=settings.max_connections,
    )
    return Account(
        primary_smtp_address=settings.mailbox,
        config=config,
        autodiscover=False,
        access_type=ACCESS[settings.access],
        default_timezone=EWSTimeZone(settings.timezone),
    )


def _credentials(settings: ExchangeBackendSettings, secret: str):  # type: ignore[no-untyped-def]
    if settings.auth == "oauth2":
        return OAuth2Credentials(
            client_id=settings.client_id,
            client_secret=secret,
            tenant_id=settings.tenant_id,
            identity=Identity(primary_smtp_address=settings.mailbox),
        )
    return Credentials(settings.username, secret)


def forget(account: Account) -> None:
    """Close a probe account's connections and drop its cached Protocol."""
    protocol = account.protocol
    protocol.close()
    with contextlib.suppress(KeyError):
        del type(protocol)[protocol.config]


def translate(exc: Exception, what: str) -> BackendError:
    """An exchangelib failure as BackendError: throttling and outages retry, a setup failure (SETUP,
    TLS, a login refused) waits for the admin, the rest is permanent. exchangelib derives
    Exchange's answers about one item (ResponseMessageError: an invalid recipient, say) from
    TransportError as well; those retry only when TRANSIENT names them."""
    if _refused_login(exc):
        return BackendError(f"{what}: Exchange answered HTTP 401 until the retry budget ran out: the login is refused "
                            "(or throttled); `rmdaemon check --online` tells which", setup=True)
    if isinstance(exc, SETUP) or _is_tls(exc):
        return BackendError(f"{what}: {type(exc).__name__}: {exc}", setup=True)
    transient = isinstance(exc, TRANSIENT)
    if isinstance(exc, ews_errors.ResponseMessageError):
        transient = isinstance(exc, tuple(kind for kind in TRANSIENT if kind is not ews_errors.TransportError))
    return BackendError(f"{what}: {type(exc).__name__}: {exc}", permanent=not transient)


def online_problem(exc: Exception, settings: ExchangeBackendSettings) -> str:
    """One sentence a mail admin can act on, for ``rmdaemon check --online``."""
    where = f"[backend.exchange] service_endpoint = {settings.service_endpoint!r}"
    if isinstance(exc, ews_errors.UnauthorizedError):
        secret = settings.client_secret_env if settings.auth == "oauth2" else settings.password_env
        return (f"bad credentials: Exchange refused the login of {settings.username or settings.client_id!r} "
                f"(auth = {settings.auth!r}); check [backend.exchange] username and the secret in ${secret}")
    if isinstance(exc, ews_errors.ErrorImpersonateUserDenied):
        return (f"missing impersonation right: {settings.username!r} may not impersonate {settings.mailbox}; "
                "assign the ApplicationImpersonation role (New-ManagementRoleAssignment -Role ApplicationImpersonation "
                f"-User {settings.username}) or set access = \"delegate\" with Full Access to the mailbox")
    if isinstance(exc, (ews_errors.ErrorAccessDenied, ews_errors.ErrorNonExistentMailbox)):
        return (f"no access to the programme mailbox {settings.mailbox}: {exc}; grant {settings.username!r} Full Access "
                "(Add-MailboxPermission) or check [program] organizer")
    if _is_tls(exc):
        return f"TLS error talking to {where}: {exc}; check the certificate chain, or the http/https scheme"
    if isinstance(exc, (ews_errors.ErrorTimeoutExpired, ews_errors.TransportError, OSError)):
        return f"unreachable host: no EWS answer from {where}: {exc}"
    return f"Exchange answered {type(exc).__name__}: {exc} ({where})"


def _refused_login(exc: BaseException) -> bool:
    """Under FaultTolerance exchangelib takes a 401 for throttling (ErrorServerBusy "Caused by HTTP
    401 response") and, past the retry budget, raises RateLimitError from it: a wrong password reads
    as a rate limit unless the cause is looked at."""
    return isinstance(exc, ews_errors.RateLimitError) and "HTTP 401" in str(exc.__context__ or "")


def _is_tls(exc: BaseException) -> bool:
    """exchangelib reports TLS failures as TransportError with the ssl error as its text."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ssl.SSLError, requests.exceptions.SSLError)) or "SSL" in str(seen) or "CERTIFICATE" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
