"""A merchant's webhook endpoint on loopback: a real HTTP server that records every request."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    # The webhook worker sends a whole batch of deliveries at once.
    request_queue_size = 128


class Receiver:
    """A merchant's webhook endpoint: records every request it gets, and answers `status` with
    `answer` (204 and nothing by default); while `hold` is given and not set, it answers
    nothing (a slow endpoint)."""

    def __init__(
        self,
        port: int,
        status: int = 204,
        answer: bytes = b"",
        hold: threading.Event | None = None,
    ) -> None:
        self.port = port
        self.received: list[tuple[dict[str, str], str]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if hold is not None:
                    hold.wait()
                self.send_response(status)
                self.send_header("x-internal-token", "s3cr3t-header")
                if status != 204:
                    self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                return None

        self._server = _Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
