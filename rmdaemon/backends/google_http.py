"""Talking to Google's APIs: google-auth's ``AuthorizedSession``, quota back-off, and batches.

Why these rules:
- Tokens: ``AuthorizedSession`` signs a JWT with the service account's key, asks the key file's
  ``token_uri`` for a delegated token (``sub`` = the programme user), refreshes it before it
  expires and once more on a 401. Its session is ours (``TimeoutSession``: the configured CA, no
  environment proxies), so the tests only change ``token_uri``, ``api_base`` and ``ca_file``.
- Quotas: 429 and 403 ``rateLimitExceeded`` / ``userRateLimitExceeded`` are refusals, always safe
  to repeat; 5xx and a lost connection are repeated only for requests whose repetition is harmless
  (reads, PATCH, DELETE, an insert carrying our iCalUID, which Google refuses twice with 409);
  for a Gmail send they raise ``Unsure`` and the caller looks for the Message-ID before sending
  again. Waits follow ``Retry-After`` when Google names one, else grow exponentially (1, 2, 4 … s
  plus jitter), all within the retry budget (``http_common.Patience``).
- Batches: ``/batch/calendar/v3`` and ``/batch/gmail/v1`` take up to 50 calls as
  ``multipart/mixed`` of ``application/http`` parts; each part has its own status, and throttled
  parts alone are sent again.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import requests
from google.auth import exceptions as auth_exceptions

from rmdaemon.backends.http_common import Call, Patience, Unsure, retry_after, tls_error
from rmdaemon.errors import BackendError

MAX_BATCH = 50
RATE_LIMITED = ("rateLimitExceeded", "userRateLimitExceeded")
# Refusals that say the installation is wrong or spent (the API is off in the project, the
# delegation lacks a scope, the user's daily sending limit is reached), the same for every request:
# the work waits for the admin or the next day instead of being recorded as refused for good.
SETUP = ("accessNotConfigured", "SERVICE_DISABLED", "insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
         "dailyLimitExceeded", "quotaExceeded")
MAX_PAUSE = 32.0


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON, None when empty
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """Google's first ``errors[].reason`` (rateLimitExceeded, notFound, duplicate …)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if not isinstance(error, dict):
            return ""
        errors = error.get("errors") or [{}]
        return str(errors[0].get("reason") or error.get("status") or "")

    @property
    def message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("message", "")) if isinstance(error, dict) else ""

    @property
    def refused(self) -> bool:
        """Throttled: the request was not carried out, so it may always be sent again."""
        return self.status == 429 or (self.status == 403 and self.reason in RATE_LIMITED)

    def error(self, what: str) -> GoogleError:
        return GoogleError(what, self)


class GoogleError(BackendError):
    def __init__(self, what: str, reply: Reply) -> None:
        transient = reply.refused or reply.status >= 500
        setup = reply.status == 401 or reply.reason in SETUP
        super().__init__(f"{what}: HTTP {reply.status} {reply.reason}: {reply.message}", permanent=not transient, setup=setup)
        self.status, self.reason = reply.status, reply.reason


class TokenError(BackendError):
    """google-auth got no token: ``error`` is Google's (invalid_grant, unauthorized_client …), or
    ours for the keyless route (``google_auth.SIGN_REFUSED``, ``NO_IDENTITY``). Never permanent:
    the installation's credentials are wrong, not the message or the series, so the work waits
    for the admin's fix (``check --online`` names it) instead of being recorded as refused."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"token request refused: {error}: {description}", setup=True)
        self.error, self.description = error, description


class GoogleHttp:
    """Requests below ``base``; counts every round trip in ``requests_sent`` (tokens not counted)."""

    def __init__(self, base: str, session: requests.Session, *, budget: float, timeout: float,
                 sleep: Callable[[float], None] = time.sleep, jitter: Callable[[], float] = random.random) -> None:
        self.base, self.session, self.budget, self.timeout = base.rstrip("/"), session, budget, timeout
        self.sleep, self.jitter = sleep, jitter
        self.requests_sent = 0

    def call(self, call: Call, what: str) -> Reply:
        patience, attempt = Patience("Google", self.budget, self.sleep), 0
        while True:
            try:
                reply = self._send(call)
            except requests.exceptions.SSLError as exc:
                raise tls_error(self.base, exc, what) from exc
            except requests.exceptions.RequestException as exc:
                if not call.safe_to_repeat:
                    raise Unsure(f"{what}: no answer from Google ({type(exc).__name__}); outcome unknown") from exc
                patience.wait(self._pause(attempt, {}), what, f"{type(exc).__name__}: {exc}")
                attempt += 1
                continue
            if reply.refused or (reply.status >= 500 and call.safe_to_repeat):
                patience.wait(self._pause(attempt, reply.headers), what, f"HTTP {reply.status} {reply.reason}")
                attempt += 1
                continue
            if reply.status >= 500:
                raise Unsure(f"{what}: HTTP {reply.status} {reply.reason}; outcome unknown")
            return reply

    def _pause(self, attempt: int, headers: Mapping[str, str]) -> float:
        return retry_after(headers, min(2.0 ** attempt, MAX_PAUSE) + self.jitter())

    def _send(self, call: Call) -> Reply:
        url = call.path if call.path.startswith("https://") else self.base + call.path
        data, headers = _encode(call)
        self.requests_sent += 1
        try:
            response = self.session.request(call.method, url, data=data, headers=headers, timeout=self.timeout)
        except auth_exceptions.RefreshError as exc:
            raise _token_error(exc) from exc
        except auth_exceptions.TransportError as exc:
            raise BackendError(f"no answer from the token endpoint: {exc}") from exc
        return Reply(response.status_code, _json(response.content), dict(response.headers))

    # -- batches ----------------------------------------------------------------------------
    def batch(self, calls: list[Call], what: str) -> list[Reply]:
        """Many calls to one API in batches of 50 (a single call goes alone); refused parts are
        sent again after the longest pause one of them asked for; replies in the calls' order."""
        if len(calls) == 1:
            return [self.call(calls[0], what)]
        replies: list[Reply | None] = [None] * len(calls)
        for start in range(0, len(calls), MAX_BATCH):
            self._batch_chunk(calls, list(range(start, min(start + MAX_BATCH, len(calls)))), replies, what)
        missing = Reply(502, {"error": {"code": 502, "message": "no answer in the batch", "errors": [{"reason": "missing"}]}})
        return [r if r is not None else missing for r in replies]

    def _batch_chunk(self, calls: list[Call], todo: list[int], replies: list[Reply | None], what: str) -> None:
        patience, attempt = Patience("Google", self.budget, self.sleep), 0
        endpoint = "/batch/" + "/".join(calls[todo[0]].path.split("/")[1:3])
        while todo:
            boundary = "rm_" + uuid.uuid4().hex
            body = b"".join(_part(boundary, i, calls[i]) for i in todo) + f"--{boundary}--\r\n".encode()
            safe = all(calls[i].safe_to_repeat for i in todo)
            outer = self.call(Call("POST", endpoint, body, {"Content-Type": f"multipart/mixed; boundary={boundary}"},
                                   safe_to_repeat=safe), what)
            if not outer.ok:
                raise outer.error(what)
            again, pause = [], 0.0
            for index, reply in _parts(outer):
                if index in todo and (reply.refused or (reply.status >= 500 and calls[index].safe_to_repeat)):
                    again.append(index)
                    pause = max(pause, self._pause(attempt, reply.headers))
                elif index in todo:
                    replies[index] = reply
            if again:
                patience.wait(pause, what, f"{len(again)} throttled part(s) of a batch")
                attempt += 1
            todo = sorted(again)


def _encode(call: Call) -> tuple[bytes | None, dict[str, str]]:
    headers = {"Accept": "application/json", **call.headers}
    if isinstance(call.body, (dict, list)):
        headers["Content-Type"] = "application/json"
        return json.dumps(call.body).encode(), headers
    if call.body is None:
        return None, headers
    return (call.body.encode() if isinstance(call.body, str) else call.body), headers


def _part(boundary: str, index: int, call: Call) -> bytes:
    data, headers = _encode(call)
    head = f"{call.method} {call.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != "Accept")
    return (f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item{index}>\r\n\r\n{head}\r\n".encode()
            + (data or b"") + b"\r\n")


def _parts(outer: Reply) -> list[tuple[int, Reply]]:
    """The parts of a batch answer: (index of the call, its reply), matched by Content-ID."""
    content_type = {k.lower(): v for k, v in outer.headers.items()}.get("content-type", "")
    raw = outer.body if isinstance(outer.body, bytes) else b""
    envelope = message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw, policy=policy.HTTP)
    found = []
    for part in envelope.iter_parts() if envelope.is_multipart() else ():
        ident = str(part.get("Content-ID", "")).strip("<>").removeprefix("response-").removeprefix("item")
        http = part.get_payload(decode=True) or b""
        head, _, data = http.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        if ident.isdigit():
            found.append((int(ident), Reply(int(lines[0].split()[1]), _json(data.strip()), headers)))
    return found


def _json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content


def _token_error(exc: auth_exceptions.RefreshError) -> TokenError:
    """google-auth's RefreshError carries ``(text, response body)``; Google's ``error`` code from it."""
    body = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    error = str(body.get("error") or "refused")
    description = str(body.get("error_description") or (exc.args[0] if exc.args else ""))
    return TokenError(error, description)
