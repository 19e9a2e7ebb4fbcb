"""A fault-injecting HTTP proxy in front of moto: S3 as a flaky network shows it. Each distinct
request fails its first time (a 503 SlowDown, or the connection reset) and then goes through,
or every write under a prefix fails for good."""

from __future__ import annotations

import http.client
import http.server
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class Faults:
    def __init__(self, transient: bool = True, broken_prefix: str | None = None) -> None:
        self.transient = transient
        self.broken_prefix = broken_prefix
        self.seen: set[tuple[str, str]] = set()
        self.injected = {"slowdown": 0, "reset": 0, "broken": 0}
        self.lock = threading.Lock()

    def decide(self, method: str, path: str) -> str | None:
        with self.lock:
            if self.broken_prefix and method in ("PUT", "POST") and self.broken_prefix in path:
                self.injected["broken"] += 1
                return "slowdown"
            if not self.transient or (method, path) in self.seen:
                return None
            self.seen.add((method, path))
            kind = "reset" if len(self.seen) % 2 else "slowdown"
            self.injected[kind] += 1
            return kind


def _handler(upstream: str, faults: Faults) -> type[http.server.BaseHTTPRequestHandler]:
    target = urlsplit(upstream)

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes | None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def _forward(self) -> None:
            body = self._body()
            fault = faults.decide(self.command, self.path.split("?")[0])
            if fault == "reset":
                # RST instead of FIN: the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault == "slowdown":
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOW_DOWN)))
                self.end_headers()
                self.wfile.write(SLOW_DOWN)
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "transfer-encoding")}
            if body is not None:
                headers["Content-Length"] = str(len(body))
            headers["Host"] = self.headers.get("Host", target.netloc)
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            # A HEAD answer has no body but announces the object's size.
            size = response.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", size or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 - http.server names

    return Proxy


@contextmanager
def faulty_proxy(upstream: str, faults: Faults) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, faults))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
