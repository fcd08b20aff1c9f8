"""Headless Debian Chromium driven by Playwright, and a tiny page to be redirected to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHROMIUM = "/usr/bin/chromium"  # the Debian package (`make browser`); never downloaded
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
THANKS = "thanks"


class _Thanks(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = THANKS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def thanks_server() -> Iterator[str]:
    """An HTTP server on a free loopback port answering every GET with 200 "thanks"; yields its
    base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Thanks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
