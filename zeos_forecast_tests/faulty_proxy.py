"""An HTTP proxy on 127.0.0.1 in front of moto's S3 server that fails on command.

Faults reach the S3 clients over real HTTP, as an unhealthy store would send them: nothing in
our code or in pyarrow is patched. The proxy forwards every request to the target unchanged
(moto does not check signatures, so a signed `Host` header naming the proxy is fine) and can be
told to answer some requests with a 5xx status, to hold answers back, to close connections
without an answer, or to stop listening altogether (connections refused, as from a stopped
server), for a while or for good.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from local_servers import free_port

__all__ = ["FaultyProxy", "faulty_proxy"]

# Headers about one hop's connection, not the request: never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
FORWARD_TIMEOUT_SECONDS = 30.0
STOP_SECONDS = 5.0
DROP = "dropped"


@dataclass
class _Fault:
    """What to do to the next `left` requests that match (`method`, a part of the path)."""

    kind: str  # an HTTP status such as "503", DROP, or "delayed"
    left: int
    seconds: float = 0.0
    method: str | None = None
    path_part: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or method == self.method) and (
            self.path_part is None or self.path_part in path
        )


class FaultyProxy:
    """A proxy for S3 requests; every method is thread-safe.

    Attributes:
        endpoint_url: `http://127.0.0.1:<port>`, where S3 clients send their requests.
        faults: How many requests got each fault so far (`"503"`, `"dropped"`, `"delayed"`, ...;
            `"refused"` counts the times it stopped listening).
        forwarded: How many requests reached the target and were answered.
    """

    def __init__(self, target_url: str):
        target = urlsplit(target_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        self._port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self._port}"
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._every: tuple[int, list[str]] | None = None
        self._seen = 0
        self._stop_at: tuple[int, float | None] | None = None
        self._down = self._closed = False
        self.faults: Counter[str] = Counter()
        self.forwarded = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._listen()

    # ---- what tests call ----

    def fail_next(
        self, requests: int, status: int = 503, method: str | None = None, path: str | None = None
    ) -> None:
        """The next `requests` requests (of `method`, with `path` in their path) get `status`."""
        self._add(_Fault(str(status), requests, method=method, path_part=path))

    def drop_next(self, requests: int) -> None:
        """The next `requests` connections are closed without an answer."""
        self._add(_Fault(DROP, requests))

    def delay_next(self, requests: int, seconds: float) -> None:
        """The next `requests` answers are held back `seconds` each."""
        self._add(_Fault("delayed", requests, seconds=seconds))

    def fail_every(self, nth: int, kinds: list[str]) -> None:
        """Every `nth` request gets the next of `kinds` in turn (statuses such as "503", DROP)."""
        with self._lock:
            self._every = (nth, list(kinds))

    def stop(self) -> None:
        """Stops listening: new connections are refused, open ones closed on their next use."""
        with self._lock:
            self._down = True
            self.faults["refused"] += 1
        self._unlisten()

    def restart(self) -> None:
        """Listens again on the same port (unless closed meanwhile)."""
        with self._lock:
            if self._closed or not self._down:
                return
            self._down = False
        self._listen()

    def stop_after(self, requests: int, seconds: float | None) -> None:
        """Stops once `requests` more were answered; restarts after `seconds` (None: never)."""
        with self._lock:
            self._stop_at = (self.forwarded + requests, seconds)

    def heal(self) -> None:
        """Forgets every pending fault and every count, and listens again if stopped."""
        with self._lock:
            self._faults.clear()
            self._every = self._stop_at = None
            self.faults.clear()
            self.forwarded = self._seen = 0
        self.restart()

    def close(self) -> None:
        with self._lock:
            self._closed = self._down = True
            self._stop_at = None
        self._unlisten()

    # ---- the proxy itself ----

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _listen(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect

            def do_request(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_request

            def log_message(self, format: str, *args) -> None:
                pass  # tests read the counters

        server = _QuietServer(("127.0.0.1", self._port), Handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self._server, self._thread = server, thread

    def _unlisten(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=STOP_SECONDS)

    def _choose(self, method: str, path: str) -> tuple[str | None, float]:
        """The fault for this request (None: forward it) and how long to hold the answer."""
        with self._lock:
            if self._down:
                return DROP, 0.0
            self._seen += 1
            kind, delay = None, 0.0
            if self._every is not None and self._seen % self._every[0] == 0:
                kinds = self._every[1]
                kind = kinds[(self._seen // self._every[0]) % len(kinds)]
            if kind is None:  # else the periodic fault is this request's one fault
                fault = next((f for f in self._faults if f.matches(method, path)), None)
                if fault is not None:
                    fault.left -= 1
                    if fault.kind == "delayed":
                        delay = fault.seconds
                    else:
                        kind = fault.kind
            self._faults = [f for f in self._faults if f.left > 0]
            for name in (kind, "delayed" if delay else None):
                if name is not None:
                    self.faults[name] += 1
            return kind, delay

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        kind, delay = self._choose(handler.command, handler.path)
        if kind == DROP:
            handler.close_connection = True
            return
        if delay:
            time.sleep(delay)
        if kind is not None:
            _answer_error(handler, int(kind))
            return
        status, headers, answer = self._forward(handler, body)
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer)
        self._answered()

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._target, timeout=FORWARD_TIMEOUT_SECONDS)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            out = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
            ]
            # A HEAD answer announces the object's length without carrying it.
            length = response.getheader("Content-Length") if handler.command == "HEAD" else None
            out.append(("Content-Length", length or str(len(answer))))
            return response.status, out, answer
        finally:
            connection.close()

    def _answered(self) -> None:
        with self._lock:
            self.forwarded += 1
            stop_at = self._stop_at
            if stop_at is None or self.forwarded < stop_at[0]:
                return
            self._stop_at = None
        # Not from this handler's thread: stopping waits for the serving loop.
        threading.Thread(target=self._outage, args=(stop_at[1],), daemon=True).start()

    def _outage(self, seconds: float | None) -> None:
        self.stop()
        if seconds is not None:
            time.sleep(seconds)
            self.restart()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up on a held-back answer closed its end: expected here


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, de-chunked if it came `Transfer-Encoding: chunked` (S3 uploads do)."""
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""
    chunks = []
    while True:
        size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while handler.rfile.readline().strip():
                pass  # trailer fields, then the blank line that ends the body
            return b"".join(chunks)
        chunks.append(handler.rfile.read(size))
        handler.rfile.readline()  # the CRLF after each chunk


def _answer_error(handler: BaseHTTPRequestHandler, status: int) -> None:
    code = "SlowDown" if status == 503 else "InternalError"
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        "<Message>injected by the test proxy</Message></Error>"
    ).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", "0" if handler.command == "HEAD" else str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


@contextmanager
def faulty_proxy(target_url: str) -> Iterator[FaultyProxy]:
    """A `FaultyProxy` in front of `target_url` for the duration of the block, then closed."""
    proxy = FaultyProxy(target_url)
    try:
        yield proxy
    finally:
        proxy.close()
