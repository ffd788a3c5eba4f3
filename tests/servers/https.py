"""A loopback HTTPS server for the cloud test servers (graph, google): 127.0.0.1, a free port, a
certificate from the test's own CA (trustme), one thread per request, killed clients ignored."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no Nagle stall, quiet; every method goes to ``_handle(method)``."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body: no 40 ms stall

    def log_message(self, format: str, *args: object) -> None:  # quiet: pytest shows failures
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        raise NotImplementedError


def serve(handler: type[BaseHTTPRequestHandler], ca: trustme.CA, ca_file: Path, name: str) -> ThreadingHTTPServer:
    """Start serving; ``ca_file`` receives the CA certificate clients must trust."""
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # killed clients
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), name=name, daemon=True).start()
    return httpd


def shut(httpd: ThreadingHTTPServer | None) -> None:
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()


def base(httpd: ThreadingHTTPServer | None) -> str:
    assert httpd is not None, "server not started"
    return f"https://127.0.0.1:{httpd.server_address[1]}"
