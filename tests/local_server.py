"""A real HTTP server on 127.0.0.1 for the download tests (test_download.py, test_untrusted_downloads.py): a thread
serving on a free port, each GET answered by the test's own function; and a port that nobody listens on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """Serves on 127.0.0.1 (a free port, `url`) from a thread while used as a context manager. `answer(handler)`
    writes the reply to each GET through the `BaseHTTPRequestHandler` (its `path`, `headers`, `send_response`,
    `wfile`, ...); the connection closes after every reply. `protocol_version` is the handler's ("HTTP/1.0":
    a reply ends with the connection)."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None], protocol_version: str = "HTTP/1.0") -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                answer(self)
                self.close_connection = True

        Handler.protocol_version = protocol_version
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def unused_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
