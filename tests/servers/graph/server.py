"""The HTTPS side of the fake Microsoft 365: identity endpoints, Graph v1.0, ``$batch``, faults, a log.

``GraphServer`` binds 127.0.0.1 on a free port with a certificate from a throwaway CA (trustme),
so msal (which refuses non-https authorities) and requests talk to it exactly as to the cloud;
tests only point ``authority_host``, ``graph_base`` and ``ca_file`` at it. One host serves both
the identity platform (``/{tenant}/...``) and Graph (``/v1.0/...``).

Throttling is modelled twice: scripted faults (429 with Retry-After, 503, a dropped connection,
each before or after the work is done, also inside ``$batch``) and the service's own limits
(4 concurrent requests per mailbox, 30 sent messages a minute per mailbox).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import trustme

from tests.servers import https
from tests.servers.graph import routes
from tests.servers.graph.api import Answer, Context, Request
from tests.servers.graph.control import Control
from tests.servers.graph.identity import Identity
from tests.servers.graph.messages import SendPace
from tests.servers.graph.store import App, GraphFault, Store

MAX_BATCH = 20
MAILBOX_CONCURRENCY = 4


@dataclass
class Fault:
    """A scripted failure for requests matching ``method`` and the ``path`` regex (below /v1.0)."""

    status: int | str  # 429, 503, 504, "drop" (close the connection unanswered) or "hold" (see GraphServer.hold)
    method: str | None = None
    path: str | None = None
    after_work: bool = False  # do the work first, then fail: the client cannot know it happened
    retry_after: int | None = 1
    times: int = 1
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or re.search(self.path, path) is not None)


@dataclass
class Logged:
    method: str
    path: str
    status: int
    part_of_batch: bool = False
    kind: str = "graph"  # graph | identity
    prefer: str = ""  # the Prefer header the client sent


@dataclass
class GraphServer:
    clock: Callable[[], datetime] | None = None
    monotonic: Callable[[], float] = time.monotonic
    store: Store = field(init=False)
    identity: Identity = field(init=False)
    log: list[Logged] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    fired: list[tuple[str | int, str, str]] = field(default_factory=list)
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self.store = Store(self.clock)
        self.identity = Identity(self.store)
        self.pace = SendPace(self.monotonic)
        self._in_flight: Counter[str] = Counter()
        self._flight_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.ca = trustme.CA()
        self.ca_file: Path | None = None
        self.control = Control(self.store, self.identity)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, ca_file: Path) -> None:
        """Serve on a free port; ``ca_file`` receives the CA certificate clients must trust."""
        self.ca_file = ca_file
        self._httpd = https.serve(_handler_for(self), self.ca, ca_file, "graph-server")

    def stop(self) -> None:
        https.shut(self._httpd)
        self._httpd = None

    @property
    def base(self) -> str:
        return https.base(self._httpd)

    # -- scripting --------------------------------------------------------------------------
    def add_fault(self, status: int | str, method: str | None = None, path: str | None = None, **options: Any) -> None:
        self.faults.append(Fault(status, method, path, **options))

    def hold(self, method: str, path: str) -> Fault:
        """Carry out the next such request but keep its answer until ``fault.released`` is set;
        ``fault.reached`` is set once the work is done. Pair with killing the client."""
        fault = Fault("hold", method, path, after_work=True)
        self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, path):
                fault.times -= 1
                self.fired.append((fault.status, method, path))
                return fault
        return None

    def graph_requests(self, *, parts: bool = False) -> list[Logged]:
        """Graph round trips (what a client paid for); with ``parts`` the $batch parts instead."""
        return [e for e in self.log if e.kind == "graph" and e.part_of_batch == parts]

    # -- Graph ------------------------------------------------------------------------------
    def graph(self, method: str, target: str, headers: dict[str, str], body: bytes, app: App,
              part: bool = False) -> tuple[Answer, Fault | None]:
        """One Graph request (top level or a $batch part): faults, permissions, the handler."""
        split = urlsplit(target)
        path = split.path.removeprefix("/v1.0") or "/"
        fault = self._take_fault(method, path)
        if fault is not None and not fault.after_work:
            answer = _fault_answer(fault)
            self.log.append(Logged(method, path, answer.status, part_of_batch=part, prefer=headers.get("prefer", "")))
            return answer, (fault if fault.status == "drop" else None)
        if path == "/$batch" and not part:
            answer = self._batch(headers, body, app)
        else:
            request = Request(method, path, dict(parse_qsl(split.query, keep_blank_values=True)), headers, body, app,
                              f"{self.base}/v1.0")
            answer = self._dispatch(request)
        self.log.append(Logged(method, path, answer.status, part_of_batch=part, prefer=headers.get("prefer", "")))
        if fault is not None and fault.status == "hold":  # done; the answer waits (the client gets killed)
            fault.reached.set()
            fault.released.wait(30)
            return answer, None
        if fault is not None:  # the work is done; the client is told otherwise
            return _fault_answer(fault), fault
        return answer, None

    def _dispatch(self, request: Request) -> Answer:
        found = routes.find(request.method, request.path)
        if found is None:
            segment = request.path.rstrip("/").rsplit("/", 1)[-1]
            return _error(GraphFault(400, "BadRequest", f"Resource not found for the segment '{segment}'."))
        route, groups = found
        try:
            with self.store.lock:
                mailbox = self._authorise(request.app, groups["user"], route.role)
                extra = {"pace": self.pace} if route.sends else {}
                return routes.call(route, Context(self.store, request, mailbox), groups, **extra)
        except GraphFault as fault:
            return _error(fault)

    def _authorise(self, app: App, user: str, role: str) -> str:
        if not app.has_any_permission:
            raise GraphFault(401, "NoPermissionsInAccessToken", "The token contains no permissions, or permissions can not be understood.")
        mailbox = self.store.mailbox(user)
        if not app.may(role, mailbox):
            raise GraphFault(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return mailbox

    def _batch(self, headers: dict[str, str], body: bytes, app: App) -> Answer:
        try:
            parts = json.loads(body or b"{}").get("requests")
        except (ValueError, AttributeError):
            return _error(GraphFault(400, "BadRequest", "Invalid batch payload format."))
        if not isinstance(parts, list) or not parts:
            return _error(GraphFault(400, "BadRequest", "Invalid batch payload format."))
        if len(parts) > MAX_BATCH:
            return _error(GraphFault(400, "BadRequest", f"Number of batch requests exceeds the limit of {MAX_BATCH}."))
        results: dict[str, int] = {}
        answers = []
        for part in parts:
            answers.append(self._batch_part(part, headers, app, results))
        answers.reverse()  # Graph answers in any order; clients must match by id
        return Answer(200, {"responses": answers})

    def _batch_part(self, part: dict[str, Any], headers: dict[str, str], app: App, results: dict[str, int]) -> dict[str, Any]:
        ident = str(part.get("id"))
        failed = [d for d in part.get("dependsOn") or [] if not 200 <= results.get(str(d), 0) < 300]
        if failed:
            results[ident] = 424
            return {"id": ident, "status": 424, "body": {"error": {"code": "FailedDependency", "message": "Dependency failed."}}}
        sub_headers = {**{k.lower(): v for k, v in (part.get("headers") or {}).items()}}
        sub_headers.setdefault("prefer", headers.get("prefer", ""))
        raw = part.get("body")
        data = json.dumps(raw).encode() if isinstance(raw, (dict, list)) else (raw or "").encode()
        url = "/v1.0" + ("" if str(part.get("url", "")).startswith("/") else "/") + str(part.get("url", ""))
        answer, _ = self.graph(str(part.get("method", "GET")).upper(), url, sub_headers, data, app, part=True)
        results[ident] = answer.status
        return _part_json(ident, answer)

    # -- the mailbox concurrency limit ------------------------------------------------------
    def enter(self, target: str) -> bool:
        mailbox = _mailbox_of(target)
        with self._flight_lock:
            self._in_flight[mailbox] += 1
            self.max_in_flight = max(self.max_in_flight, sum(self._in_flight.values()))
            return self._in_flight[mailbox] <= MAILBOX_CONCURRENCY

    def leave(self, target: str) -> None:
        with self._flight_lock:
            self._in_flight[_mailbox_of(target)] -= 1


def _mailbox_of(target: str) -> str:
    match = re.match(r"^/v1\.0/users/([^/?]+)", target)
    return match[1].casefold() if match else ""


def _error(fault: GraphFault) -> Answer:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    inner = {"date": stamp, "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}
    return Answer(fault.status, {"error": {"code": fault.code, "message": fault.message, "innerError": inner}}, dict(fault.headers))


def _fault_answer(fault: Fault) -> Answer:
    """The answer a fault gives; a dropped connection (status 0) is shown to $batch as a 504."""
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if fault.status == "drop":
        return Answer(504, _error(GraphFault(504, "GatewayTimeout", "The operation timed out.")).body)
    if fault.status == 429:
        return Answer(429, _error(GraphFault(429, "TooManyRequests", "Too many requests.")).body, headers)
    code = "ServiceUnavailable" if fault.status == 503 else "GatewayTimeout"
    return Answer(int(fault.status), _error(GraphFault(int(fault.status), code, "The service is temporarily unavailable.")).body, headers)


def _part_json(ident: str, answer: Answer) -> dict[str, Any]:
    import base64

    if isinstance(answer.body, bytes):  # $batch carries non-JSON bodies base64-encoded
        return {"id": ident, "status": answer.status, "headers": {**answer.headers, "Content-Type": answer.content_type},
                "body": base64.b64encode(answer.body).decode()}
    part: dict[str, Any] = {"id": ident, "status": answer.status, "headers": dict(answer.headers)}
    if answer.body is not None:
        part["headers"]["Content-Type"] = "application/json"
        part["body"] = answer.body
    return part


def _handler_for(server: GraphServer) -> type[BaseHTTPRequestHandler]:
    class Handler(https.Handler):
        def _handle(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path.startswith("/v1.0/"):
                self._graph(method, headers, body)
            else:
                self._identity(method, body)

        def _identity(self, method: str, body: bytes) -> None:
            path = urlsplit(self.path).path
            discovery = re.match(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$", path)
            token = re.match(r"^/([^/]+)/oauth2/v2\.0/token$", path)
            with server.store.lock:
                if discovery and method == "GET":
                    status, payload = server.identity.openid_configuration(server.base, discovery[1])
                elif token and method == "POST":
                    status, payload = server.identity.token(server.base, token[1], body, server.base)
                else:
                    status, payload = 404, {"error": "not_found"}
            server.log.append(Logged(method, path, status, kind="identity"))
            self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8", {})

        def _graph(self, method: str, headers: dict[str, str], body: bytes) -> None:
            with server.store.lock:
                app, why = server.identity.app_for(headers.get("authorization", ""))
            if app is None:
                answer = _error(GraphFault(401, "InvalidAuthenticationToken", why))
                server.log.append(Logged(method, urlsplit(self.path).path.removeprefix("/v1.0"), 401))
                self._answer(answer)
                return
            admitted = server.enter(self.path)
            try:
                if not admitted:
                    answer = _error(GraphFault(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                                               {"Retry-After": "1"}))
                    server.log.append(Logged(method, urlsplit(self.path).path.removeprefix("/v1.0"), 429))
                    fault = None
                else:
                    answer, fault = server.graph(method, self.path, headers, body, app)
            finally:
                server.leave(self.path)
            if fault is not None and fault.status == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(answer)

        def _answer(self, answer: Answer) -> None:
            if answer.body is None:
                self._send(answer.status, b"", "", answer.headers)
            elif isinstance(answer.body, bytes):
                self._send(answer.status, answer.body, answer.content_type, answer.headers)
            else:
                self._send(answer.status, json.dumps(answer.body).encode(), answer.content_type, answer.headers)

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("request-id", str(uuid.uuid4()))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
