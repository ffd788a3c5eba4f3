"""A loopback HTTPS server for the cloud test servers (graph, google): 127.0.0.1, a free port, a
certificate from the test's own CA (trustme), one thread per request, killed clients ignored."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme


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
