"""A JSON-RPC proxy between the settlement process and anvil, to stop settlement at an exact point
of sending a transaction: the next eth_sendRawTransaction is held before it reaches the node
(signed and stored, not sent) or after the node took it (sent, the answer not back yet), and the
test's action (kill -9 of the process) runs right there, before the proxy answers nothing and
drops the connection. Everything else passes through; while anvil is down the proxy drops the
connection, as an unreachable node would."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devstack.postgres import free_port

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Hold(Enum):
    BEFORE_NODE = "before the node"
    AFTER_NODE = "after the node"


@dataclass
class HeldSend:
    """The one eth_sendRawTransaction held: `at_hold` runs there (on the proxy's thread), then
    `reached` is set; `raw` is the transaction as the caller sent it."""

    hold: Hold
    at_hold: Callable[[], None]
    reached: threading.Event = field(default_factory=threading.Event)
    raw: str = ""


class ChainProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._held: HeldSend | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def hold_next_send(self, hold: Hold, at_hold: Callable[[], None]) -> HeldSend:
        """Arms the hold of the next eth_sendRawTransaction."""
        with self._lock:
            assert self._held is None, "a send is held already"
            self._held = HeldSend(hold, at_hold)
            return self._held

    def _take(self, request: dict[str, object]) -> HeldSend | None:
        if request.get("method") != "eth_sendRawTransaction":
            return None
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            params = request.get("params")
            held.raw = str(params[0]) if isinstance(params, list) and params else ""
        return held

    def _forward(self, body: bytes) -> bytes | None:
        """The node's answer, or None when it cannot be reached."""
        request = urllib.request.Request(
            self.upstream, body, {"content-type": "application/json"}, method="POST"
        )
        try:
            with _NO_PROXY.open(request, timeout=10) as answer:
                return bytes(answer.read())
        except (urllib.error.URLError, OSError):
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    request = json.loads(body)
                except ValueError:
                    request = {}
                held = proxy._take(request) if isinstance(request, dict) else None
                answer = None
                if held is None or held.hold is Hold.AFTER_NODE:
                    answer = proxy._forward(body)
                if held is not None:
                    try:
                        held.at_hold()
                    finally:
                        held.reached.set()
                    answer = None  # its caller is gone
                if answer is None:
                    self.close_connection = True
                    return
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
