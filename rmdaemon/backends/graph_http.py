"""Talking to Microsoft Graph: an msal token, one requests session, throttling, and ``$batch``.

Why these rules:
- ``TimeoutSession`` (shared with the google backend in ``http_common``): the environment's CA
  bundle and proxies are ignored.
- ``Prefer: IdType="ImmutableId"``: ids we keep (pending inbox messages, drafts) survive moves.
- 429 is always safe to repeat (the request was refused, not run) and its ``Retry-After`` is
  honoured. 503/504 and a lost connection are repeated only for requests whose repetition is
  harmless (reads, PATCH, creates carrying a ``transactionId``); for a send they raise
  ``Unsure``, and the caller looks in Sent Items before anything goes out again.
- At most two requests in flight (Exchange Online allows four per mailbox and app; the rest of
  the headroom is left to people's clients and to ``$batch``, whose parts count too).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from rmdaemon.backends.http_common import Call, Patience, TimeoutSession, Unsure, tls_error
from rmdaemon.backends.http_common import retry_after as retry_after_seconds
from rmdaemon.errors import BackendError

__all__ = ["Call", "GraphError", "GraphHttp", "Reply", "TimeoutSession", "TokenError", "Unsure", "retry_after"]

PREFER = 'IdType="ImmutableId", outlook.timezone="UTC"'
MAX_BATCH = 20  # Graph's limit of sub-requests per $batch
MAX_IN_FLIGHT = 2
DEFAULT_BACK_OFF = 5.0  # seconds, when a 503 names no Retry-After
RETRIED_STATUS = (429, 503, 504)
# Refusals about the installation, not the request (besides every 401 and 403: a token without the
# roles, an app outside the mailbox's RBAC scope): the programme mailbox Graph cannot reach, or one
# that cannot send (full, blocked for sending, no send-as right). The same for every message, so
# the work waits for the admin's fix instead of being recorded as refused for good.
MAILBOX_MISSING = ("ErrorInvalidUser", "ResourceNotFound", "MailboxNotEnabledForRESTAPI", "ErrorNonExistentMailbox")
SETUP_CODES = (*MAILBOX_MISSING, "ErrorQuotaExceeded", "ErrorMessageSubmissionBlocked", "ErrorSendAsDenied")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON, bytes for other content, None when empty
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return _error(self.body)[0]

    @property
    def message(self) -> str:
        return _error(self.body)[1]

    def error(self, what: str) -> GraphError:
        return GraphError(what, self)


class GraphError(BackendError):
    """Graph refused a request; ``code`` is Graph's error code (ErrorAccessDenied ...)."""

    def __init__(self, what: str, reply: Reply) -> None:
        transient = reply.status in RETRIED_STATUS or reply.status >= 500
        setup = reply.status in (401, 403) or reply.code in SETUP_CODES
        super().__init__(f"{what}: HTTP {reply.status} {reply.code}: {reply.message}", permanent=not transient, setup=setup)
        self.status, self.code, self.reply = reply.status, reply.code, reply


class TokenError(BackendError):
    """No access token: the text is the identity platform's own (AADSTS... code and reason). Never
    permanent: a wrong secret, a missing consent or a disabled app is the installation's, not the
    message's, so the work waits for the admin's fix (``check --online`` names it)."""

    def __init__(self, error: str, description: str, codes: Iterable[int] = ()) -> None:
        super().__init__(f"token request refused: {error}: {description}", setup=error != "temporarily_unavailable")
        self.error, self.description, self.codes = error, description, list(codes)


class GraphHttp:
    """Authenticated requests to one Graph endpoint; counts every round trip in ``requests_sent``."""

    def __init__(self, base: str, session: requests.Session, token: Callable[[bool], str], *, budget: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.root = base.rstrip("/") + "/v1.0"
        self.session, self._token, self.budget, self.sleep = session, token, budget, sleep
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self.requests_sent = 0

    # -- one request ------------------------------------------------------------------------
    def call(self, call: Call, what: str) -> Reply:
        """Send ``call``, waiting out throttling within the budget; a refusal comes back as a Reply."""
        waited, refreshed = 0.0, False
        while True:
            try:
                reply = self._send(call.method, self._url(call.path), call.body, call.headers, refresh=False)
            except requests.exceptions.SSLError as exc:
                raise tls_error(self.root, exc, what) from exc
            except requests.exceptions.RequestException as exc:
                if not call.safe_to_repeat:
                    raise Unsure(f"{what}: no answer from Graph ({type(exc).__name__}); outcome unknown") from exc
                waited = self._back_off(waited, DEFAULT_BACK_OFF, what, f"{type(exc).__name__}: {exc}")
                continue
            if reply.status == 401 and reply.code == "InvalidAuthenticationToken" and not refreshed:
                self._token(True)  # expired or revoked: one fresh token, then one more try
                refreshed = True
                continue
            if reply.status in RETRIED_STATUS and (reply.status == 429 or call.safe_to_repeat):
                waited = self._back_off(waited, retry_after(reply), what, f"HTTP {reply.status} {reply.code}")
                continue
            if reply.status in RETRIED_STATUS and not call.safe_to_repeat:
                raise Unsure(f"{what}: HTTP {reply.status} {reply.code}; outcome unknown")
            return reply

    def get_url(self, url: str, what: str, headers: Mapping[str, str] | None = None) -> Reply:
        """GET an absolute link Graph handed out (``@odata.nextLink`` / ``@odata.deltaLink``)."""
        return self.call(Call("GET", url, headers=headers or {}), what)

    def _url(self, path: str) -> str:
        return path if path.startswith("https://") else self.root + path

    def _send(self, method: str, url: str, body: Any, headers: Mapping[str, str], *, refresh: bool) -> Reply:
        sent = {"Authorization": f"Bearer {self._token(refresh)}", "Prefer": PREFER, "Accept": "application/json",
                "client-request-id": str(uuid.uuid4()), **headers}
        data = None
        if isinstance(body, (dict, list)):
            data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif body is not None:
            data = body.encode() if isinstance(body, str) else body
            sent.setdefault("Content-Type", "text/plain")
        with self._slots:
            self.requests_sent += 1
            response = self.session.request(method, url, data=data, headers=sent)
        return Reply(response.status_code, _parse(response.content, response.headers.get("Content-Type", "")),
                     dict(response.headers))

    def _back_off(self, waited: float, seconds: float, what: str, why: str) -> float:
        Patience("Graph", self.budget, self.sleep, waited).wait(seconds, what, why)
        return waited + seconds

    # -- $batch -----------------------------------------------------------------------------
    def batch(self, calls: list[Call], what: str) -> list[Reply]:
        """Many calls in ``$batch`` requests of 20; throttled parts are retried after their
        Retry-After, the rest come back in order (a single call goes alone: no envelope)."""
        if len(calls) == 1:
            return [self.call(calls[0], what)]
        replies: list[Reply | None] = [None] * len(calls)
        for start in range(0, len(calls), MAX_BATCH):
            chunk = list(range(start, min(start + MAX_BATCH, len(calls))))
            self._batch_chunk(calls, chunk, replies, what)
        missing = Reply(502, {"error": {"code": "MissingBatchResponse", "message": "no answer in the $batch"}})
        return [r if r is not None else missing for r in replies]

    def _batch_chunk(self, calls: list[Call], todo: list[int], replies: list[Reply | None], what: str) -> None:
        waited = 0.0
        while todo:
            envelope = {"requests": [_sub_request(str(i), calls[i]) for i in todo]}
            safe = all(calls[i].safe_to_repeat for i in todo)
            outer = self.call(Call("POST", "/$batch", envelope, safe_to_repeat=safe), what)
            if not outer.ok:
                raise outer.error(what)
            again, pause = [], 0.0
            for part in outer.body.get("responses", []):
                index, reply = int(part["id"]), _sub_reply(part)
                if reply.status in RETRIED_STATUS and (reply.status == 429 or calls[index].safe_to_repeat):
                    again.append(index)
                    pause = max(pause, retry_after(reply))
                else:
                    replies[index] = reply
            if again:
                waited = self._back_off(waited, pause, what, f"{len(again)} throttled part(s) of a $batch")
            todo = sorted(again)


def retry_after(reply: Reply) -> float:
    """Seconds Graph asks us to wait (``Retry-After``), or a short default."""
    return retry_after_seconds(reply.headers, DEFAULT_BACK_OFF)


def _sub_request(ident: str, call: Call) -> dict[str, Any]:
    part: dict[str, Any] = {"id": ident, "method": call.method, "url": call.path, "headers": {"Prefer": PREFER, **call.headers}}
    if isinstance(call.body, (dict, list)):
        part["body"] = call.body
        part["headers"]["Content-Type"] = "application/json"
    elif call.body is not None:
        part["body"] = call.body.decode() if isinstance(call.body, bytes) else call.body
        part["headers"].setdefault("Content-Type", "text/plain")
    return part


def _sub_reply(part: Mapping[str, Any]) -> Reply:
    """A $batch part; bodies that are not JSON arrive base64-encoded."""
    headers = dict(part.get("headers") or {})
    body = part.get("body")
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "application/json")
    if isinstance(body, str) and "json" not in content_type:
        try:
            body = base64.b64decode(body, validate=True)
        except ValueError:
            body = body.encode()
    return Reply(int(part.get("status", 0)), body, headers)


def _parse(content: bytes, content_type: str) -> Any:
    if not content:
        return None
    if "json" in content_type:
        try:
            return json.loads(content)
        except ValueError:
            return content
    return content


def _error(body: Any) -> tuple[str, str]:
    """(code, message) of Graph's ``{"error": {"code", "message"}}`` body, tolerant of anything else."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", "")), str(body["error"].get("message", ""))
    if isinstance(body, bytes):
        return "", body[:200].decode("utf-8", "replace")
    return "", ""
