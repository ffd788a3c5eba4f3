"""The HTTPS side of the fake Google Workspace: the token endpoint, Calendar v3, Gmail v1, the
batch endpoints, scripted faults and a log of every request.

``GoogleServer`` binds 127.0.0.1 on a free port with a certificate from a throwaway CA (trustme);
tests point the key file's ``token_uri``, ``api_base`` and ``ca_file`` at it, and google-auth and
requests talk to it exactly as to Google. Faults: 403 ``rateLimitExceeded`` /
``userRateLimitExceeded``, 429, 500/503, a dropped connection and a held answer (for killing the
client after the work is done) and a slow answer (past the client's timeout), each before or
after the work, also inside a batch. Gmail's per-user quota is kept as Google documents it
(developers.google.com/gmail/api/reference/quota): 15,000 units a user a minute, 100 a send, 5
most reads, over a minute measured on ``gmail_quota.clock``; beyond it 403 ``userRateLimitExceeded``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import trustme

from tests.servers import https
from tests.servers.google import routes
from tests.servers.google.control import Control
from tests.servers.google.iam import SIGN_BLOB, Iam
from tests.servers.google.oauth import OAuth, Token
from tests.servers.google.store import ApiError, Store

MAX_BATCH = 50
REASONS = {403: "rateLimitExceeded", 429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}


@dataclass
class Fault:
    """A scripted failure for requests matching ``method`` and the ``path`` regex."""

    status: int | str  # 403, 429, 500, 503, "drop" (connection closed unanswered), "hold" or "slow"
    method: str | None = None
    path: str | None = None
    after_work: bool = False  # do the work, then fail: the client cannot know it happened
    retry_after: int | None = None
    reason: str = ""  # 403: rateLimitExceeded (default) or userRateLimitExceeded
    delay: float = 0.0  # "slow": the work is done, the answer comes this many seconds later
    times: int = 1
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or re.search(self.path, path) is not None)

    def error(self) -> ApiError:
        status = 503 if self.status == "drop" else int(self.status)
        reason = self.reason or REASONS.get(status, "backendError")
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        message = "Rate Limit Exceeded" if "Limit" in reason else "Backend Error"
        return ApiError(status, reason, message, domain="usageLimits" if "Limit" in reason else "global", headers=headers)


@dataclass
class GmailQuota:
    """Quota units each user spent in the last 60 seconds of ``clock`` (tests swap in a fake one)."""

    per_minute: int = 15_000
    clock: Callable[[], float] = time.monotonic
    spent: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def charge(self, user: str, units: int) -> None:
        now = self.clock()
        spent = self.spent.setdefault(user, deque())
        while spent and spent[0][0] <= now - 60:
            spent.popleft()
        if sum(u for _, u in spent) + units > self.per_minute:
            raise ApiError(403, "userRateLimitExceeded", "User-rate limit exceeded.", domain="usageLimits")
        spent.append((now, units))


@dataclass
class Logged:
    method: str
    path: str
    status: int
    part_of_batch: bool = False
    kind: str = "api"  # api | token | iam (the token exchange and signBlob of keyless accounts)
    query: str = ""


@dataclass
class GoogleServer:
    clock: Callable[[], datetime] | None = None
    store: Store = field(init=False)
    oauth: OAuth = field(init=False)
    iam: Iam = field(init=False)
    log: list[Logged] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    gmail_quota: GmailQuota = field(default_factory=GmailQuota)

    def __post_init__(self) -> None:
        self.store = Store(self.clock)
        self.oauth = OAuth(self.store)
        self.iam = Iam(self.store)
        self.control = Control(self.store, self.oauth, self.iam)
        self.ca = trustme.CA()
        self.ca_file: Path | None = None
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, ca_file: Path) -> None:
        self.ca_file = ca_file
        self._httpd = https.serve(_handler_for(self), self.ca, ca_file, "google-server")

    def stop(self) -> None:
        https.shut(self._httpd)
        self._httpd = None

    @property
    def base(self) -> str:
        return https.base(self._httpd)

    @property
    def token_uri(self) -> str:
        return self.base + "/token"

    @property
    def sts_uri(self) -> str:
        """Where a workload identity federation config sends its token exchange (sts.googleapis.com)."""
        return self.base + "/v1/token"

    # -- scripting --------------------------------------------------------------------------
    def add_fault(self, status: int | str, method: str | None = None, path: str | None = None, **options: Any) -> Fault:
        fault = Fault(status, method, path, **options)
        self.faults.append(fault)
        return fault

    def hold(self, method: str, path: str) -> Fault:
        """Do the next such request's work but keep its answer until ``released`` (kill the client meanwhile)."""
        return self.add_fault("hold", method, path, after_work=True)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, path):
                fault.times -= 1
                return fault
        return None

    def requests(self, *, parts: bool = False) -> list[Logged]:
        """API round trips (what a client paid for); with ``parts`` the batch parts instead."""
        return [e for e in self.log if e.kind == "api" and e.part_of_batch == parts]

    # -- the API ----------------------------------------------------------------------------
    def api(self, method: str, target: str, body: bytes, token: Token, part: bool = False,
            content_type: str = "") -> tuple[int, Any, dict[str, str], Fault | None]:
        """One request (top level or a batch part): faults, scopes, the handler → (status, JSON, headers, fault)."""
        split = urlsplit(target)
        path = split.path
        fault = self._take_fault(method, path)
        if fault is not None and not fault.after_work:
            status, payload, headers = _failed(fault.error())
            self.log.append(Logged(method, path, status, part))
            return status, payload, headers, fault
        if path.startswith("/batch/") and not part:
            status, payload, headers = self._batch(path, body, token, content_type)
            return status, payload, headers, None
        status, payload, headers = self._dispatch(method, path, dict(parse_qsl(split.query, keep_blank_values=True)), body, token)
        self.log.append(Logged(method, path, status, part, query=unquote(split.query)))
        if fault is not None and fault.status in ("hold", "slow"):
            fault.reached.set()
            fault.released.wait(30 if fault.status == "hold" else fault.delay)
            return status, payload, headers, None
        if fault is not None:
            status, payload, headers = _failed(fault.error())
        return status, payload, headers, fault

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: bytes, token: Token) -> tuple[int, Any, dict[str, str]]:
        found = routes.find(method, path)
        if found is None:
            return _failed(ApiError(404, "notFound", "Not Found"))
        route, groups = found
        try:
            if route.api not in token.account.apis:
                raise ApiError(403, "accessNotConfigured", f"{'Google Calendar' if route.api == 'calendar' else 'Gmail'} API has "
                               "not been used in project 123456 before or it is disabled.", domain="usageLimits")
            if not token.scopes & route.scopes:
                raise ApiError(403, "insufficientPermissions", "Request had insufficient authentication scopes.")
            if route.api == "gmail":
                with self.store.lock:
                    self.gmail_quota.charge(token.user, route.units)
            data = json.loads(body) if body else {}
            handler = routes.HANDLERS[route.api](self.store, token.user, query)
            args = [unquote(g) for g in groups] + ([data] if method in ("POST", "PATCH") else [])
            with self.store.lock:
                payload = route.call(handler, *args)
        except ApiError as error:
            return _failed(error)
        except ValueError as error:
            return _failed(ApiError(400, "parseError", f"Parse Error: {error}"))
        return (204, None, {}) if payload is None else (200, payload, {})

    def _batch(self, path: str, body: bytes, token: Token, content_type: str) -> tuple[int, Any, dict[str, str]]:
        """``multipart/mixed`` of ``application/http`` parts, answered part by part in order."""
        self.log.append(Logged("POST", path, 200))
        envelope = message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=policy.HTTP)
        parts = list(envelope.iter_parts()) if envelope.is_multipart() else []
        if not parts or len(parts) > MAX_BATCH:
            return _failed(ApiError(400, "badRequest", f"A batch holds 1 to {MAX_BATCH} calls."))
        answers = []
        for part in parts:
            request = part.get_payload(decode=True) or b""
            head, _, data = request.partition(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            status, payload, headers, _fault = self.api(method, target, data.strip(), token, part=True)
            answers.append((str(part.get("Content-ID", "")), status, payload, headers))
        return 200, _multipart(answers), {}


def _failed(error: ApiError) -> tuple[int, Any, dict[str, str]]:
    return error.code, error.body(), dict(error.headers)


@dataclass(frozen=True)
class Multipart:
    """A batch answer: ``multipart/mixed`` bytes and their boundary."""

    data: bytes
    boundary: str


def _multipart(answers: list[tuple[str, int, Any, dict[str, str]]]) -> Multipart:
    boundary = "batch_" + uuid.uuid4().hex
    out = []
    for content_id, status, payload, headers in answers:
        data = b"" if payload is None else json.dumps(payload).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        inner = (f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\nContent-Type: application/json; charset=UTF-8\r\n"
                 f"{extra}Content-Length: {len(data)}\r\n\r\n").encode() + data
        out.append(f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id.strip('<>')}>\r\n\r\n".encode()
                   + inner + b"\r\n")
    return Multipart(b"".join(out) + f"--{boundary}--\r\n".encode(), boundary)


def _handler_for(server: GoogleServer) -> type[BaseHTTPRequestHandler]:
    class Handler(https.Handler):
        def _handle(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            if path == "/token" and method == "POST":
                with server.store.lock:
                    status, payload = server.oauth.token(body)
                server.log.append(Logged(method, path, status, kind="token"))
                self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8", {})
                return
            if method == "POST" and (path == "/v1/token" or SIGN_BLOB.match(path)):
                with server.store.lock:
                    status, payload = (server.iam.exchange(body) if path == "/v1/token" else
                                       server.iam.sign_blob(path, self.headers.get("Authorization", ""), body))
                server.log.append(Logged(method, path, status, kind="iam"))
                self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8", {})
                return
            with server.store.lock:
                token = server.oauth.bearer(self.headers.get("Authorization", ""))
            if token is None:
                error = ApiError(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 access "
                                 "token, login cookie or other valid authentication credential.")
                server.log.append(Logged(method, path, 401))
                self._send(401, json.dumps(error.body()).encode(), "application/json; charset=UTF-8", {})
                return
            status, payload, headers, fault = server.api(method, self.path, body, token,
                                                         content_type=self.headers.get("Content-Type", ""))
            if fault is not None and fault.status == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(payload, Multipart):
                self._send(status, payload.data, f"multipart/mixed; boundary={payload.boundary}", headers)
            elif payload is None:
                self._send(status, b"", "", headers)
            else:
                self._send(status, json.dumps(payload).encode(), "application/json; charset=UTF-8", headers)

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
