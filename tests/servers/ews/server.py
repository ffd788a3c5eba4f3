"""The HTTP side of the fake Exchange: Basic auth, schema check, faults, dispatch, counting.

``EwsServer`` binds 127.0.0.1 on a free port and serves ``/EWS/Exchange.asmx`` from a thread.
Operations live in their own modules and are looked up by the element name under ``s:Body``.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

from tests.servers.ews import availability, finditem, folders, items, timezones
from tests.servers.ews.context import Context
from tests.servers.ews.control import Control
from tests.servers.ews.faults import Fault, FaultPlan
from tests.servers.ews.schema import EwsSchema
from tests.servers.ews.soap import EwsError, SoapFault, envelope, fault_envelope, header_elements, parse_request
from tests.servers.ews.store import Store

PATH = "/EWS/Exchange.asmx"
HOLD_LIMIT_SECONDS = 30  # a held answer goes out after this even if the test never releases it
Operation = Callable[[Context], etree._Element]


def operations() -> dict[str, Operation]:
    table: dict[str, Operation] = {}
    for module in (folders, items, finditem, availability, timezones):
        table.update(module.OPERATIONS)
    return table


class EwsServer:
    """A stateful Exchange stand-in. ``control`` is the tests' side door; ``counts`` the round trips."""

    def __init__(self, schema: EwsSchema | None, clock: Callable[[], datetime] | None = None) -> None:
        self.schema = schema
        self.store = Store(clock)
        self.faults = FaultPlan()
        self.control = Control(self.store)
        self.counts: Counter[str] = Counter()
        self.validated = 0
        self.invalid: list[str] = []  # one line per request that failed the schema
        self.expected_invalid = 0  # set by a test that sends an invalid request on purpose
        self.warnings: list[str] = []
        self.log: list[bytes] = []  # every request body, for reading what a client sends
        self._operations = operations()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="ews-server", daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def add_fault(self, kind: str, operation: str | None = None, times: int = 1, **options: object) -> Fault:
        fault = Fault(kind, operation, **options)  # type: ignore[arg-type]
        self.faults.add(fault, times)
        return fault

    def hold(self, operation: str, contains: bytes = b"") -> Fault:
        """Carry out the next such request but keep its answer until ``fault.released`` is set;
        ``fault.reached`` is set once the work is done. Pair with killing the client."""
        return self.add_fault("hold", operation, contains=contains)

    # -- one request ------------------------------------------------------------------------
    def handle(self, username: str, data: bytes) -> tuple[int, bytes]:
        """Answer one authenticated POST body: (HTTP status, SOAP bytes)."""
        self.log.append(data)
        try:
            request = parse_request(data)
            self.counts[request.operation] += 1
            self._validate(data, request.operation)
            with self.store.lock:
                ctx = Context(self.store, self.store.accounts[username], request)
                ctx.check_impersonation()
                operation = self._operations.get(request.operation)
                if operation is None:
                    raise SoapFault("ErrorInvalidOperation", f"operation {request.operation} not implemented here")
                return 200, envelope(request.version, operation(ctx))
        except SoapFault as fault:
            return 500, fault_envelope(fault)
        except EwsError as error:  # a whole-request error outside any response message
            return 500, fault_envelope(SoapFault(error.code, error.text))

    def _validate(self, data: bytes, operation: str) -> None:
        if self.schema is None:
            return
        root = etree.fromstring(data)
        for element in [*header_elements(root), root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]]:
            verdict = self.schema.check(element)
            self.warnings.extend(verdict.warnings)
            if not verdict.ok:
                self.invalid.append(f"{operation}: {'; '.join(verdict.errors)}")
                raise SoapFault("ErrorSchemaValidation", f"The request failed schema validation: {verdict.errors[0]}")
        self.validated += 1


def _handler_for(server: EwsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the second waits for the client's
        # delayed ACK (~40 ms a request on loopback) — Exchange's IIS does not make clients wait.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # quiet: pytest shows failures
            pass

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            username = self._authenticated()
            if username is None:
                self._send(401, b"401 - Unauthorized", "text/html", {"WWW-Authenticate": 'Basic realm="127.0.0.1"'})
                return
            fault = server.faults.take(_operation_name(data), data)
            if fault is not None and self._inject(fault):
                return
            status, body = server.handle(username, data)
            if fault is not None and fault.kind == "lost":  # done, but the client never hears of it
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "hold":
                fault.reached.set()
                fault.released.wait(HOLD_LIMIT_SECONDS)
                self.close_connection = True
            try:
                self._send(status, body, "text/xml; charset=utf-8")
            except OSError:  # the client is gone (killed while its answer was held): nobody to tell
                self.close_connection = True

        def _authenticated(self) -> str | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            try:
                username, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None
            account = server.store.accounts.get(username)
            return username if account is not None and account.password == password else None

        def _inject(self, fault: Fault) -> bool:
            """Carry out a scripted fault; True when the request has been answered (or dropped)."""
            if fault.kind in ("hold", "lost"):
                return False  # carried out first, then held or cut off (do_POST)
            if fault.kind == "slow":
                time.sleep(fault.delay_seconds)
                return False
            if fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return True
            if fault.kind == "busy":
                text = "The server cannot service this request right now. Try again later."
                self._send(500, fault_envelope(SoapFault("ErrorServerBusy", text, fault.back_off_ms)), "text/xml; charset=utf-8")
                return True
            status = 500 if fault.kind == "http500" else 503
            self._send(status, b"<html><body>Server Error in '/EWS' Application.</body></html>", "text/html")
            return True

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _operation_name(data: bytes) -> str:
    """The operation of a body, cheaply and without failing (faults are chosen before parsing)."""
    try:
        return parse_request(data).operation
    except SoapFault:
        return ""
