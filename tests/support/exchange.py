"""Send explicit HTTP/1.1 requests to a proxy and normalise what came back.

The normalisation is the one documented in docs/conformance.md: it drops only
what each proxy adds on its own or frames differently, so everything a filter
touches (status, headers, bodies, and what the upstream received) is compared.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Framing: once a filter removes content-length, a proxy may send the body with a new
# content-length or chunked; which one can depend on timing (whether the whole body
# had arrived). The bodies themselves are compared byte for byte.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Response headers a proxy sets on its own: Envoy always adds `date`.  (The Envoy
# bootstrap already turns off x-request-id, `server: envoy` and the router's x-envoy-*
# headers; both proxies add x-forwarded-proto.)
RESPONSE_HEADERS_IGNORED = frozenset({"date"}) | FRAMING_HEADERS
# Request headers, as the echo upstream saw them, that a proxy adds on its own: none.
UPSTREAM_HEADERS_IGNORED = FRAMING_HEADERS

DEFAULT_HOST = "conformance.test"


@dataclass
class Request:
    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | list[bytes] = b""          # a list is sent chunked, one chunk per item
    trailers: dict[str, str] = field(default_factory=dict)   # sent after a chunked body
    repeated: list[tuple[str, str]] = field(default_factory=list)  # extra lines, repeats kept
    read_trailers: bool = False              # parse the response by hand to see its trailers
    # Repeat the request (up to ``until_timeout`` s) until this holds for the reply.
    until: Callable[[Exchange], bool] | None = None
    until_timeout: float = 5.0


@dataclass
class Exchange:
    status: int                       # 0 when the proxy closed the connection instead
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)   # read_trailers only

    @property
    def reset(self) -> bool:
        """The proxy closed the connection without a response (e.g. proxy_close_stream)."""
        return self.status == 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def echo(self) -> dict[str, Any] | None:
        """The echo upstream's JSON of what it received, if this reply is one."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) and "method" in data else None

    def echo_header(self, name: str) -> str | None:
        echo = self.echo()
        if echo is None:
            return None
        for key, value in echo["headers"]:
            if key == name:
                return value
        return None


def send(port: int, request: Request, timeout: float = 10.0,
         conn: http.client.HTTPConnection | None = None) -> Exchange:
    """One request to 127.0.0.1:port: on a fresh connection, or on ``conn`` (kept open)."""
    headers = {"host": DEFAULT_HOST, "user-agent": "conformance-client",
               "accept-encoding": "identity"}
    headers.update(request.headers)
    if request.trailers or request.read_trailers:
        return _send_raw(port, request, headers, timeout)
    keep = conn is not None
    if conn is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if request.repeated:
            body = request.body if isinstance(request.body, bytes) else b"".join(request.body)
            conn.putrequest(request.method, request.path, skip_host=True,
                            skip_accept_encoding=True)
            for key, value in [*headers.items(), *request.repeated]:
                conn.putheader(key, value)
            if body:
                conn.putheader("content-length", str(len(body)))
            conn.endheaders(body or None)
        elif isinstance(request.body, list):
            conn.request(request.method, request.path, body=iter(request.body),
                         headers=headers, encode_chunked=True)
        else:
            conn.request(request.method, request.path, body=request.body or None,
                         headers=headers)
        try:
            response = conn.getresponse()
            body = response.read()
        except (http.client.RemoteDisconnected, http.client.IncompleteRead,
                ConnectionResetError):
            return Exchange(0, [], b"")     # reset before or during the response
        return Exchange(response.status,
                        [(k.lower(), v) for k, v in response.getheaders()], body)
    finally:
        if not keep:
            conn.close()


def _send_raw(port: int, request: Request, headers: dict[str, str],
              timeout: float) -> Exchange:
    """Write the request by hand (http.client cannot send trailers) and parse the reply
    with httptools (http.client drops response trailers)."""
    import socket

    import httptools

    chunks = request.body if isinstance(request.body, list) else [request.body]
    head = f"{request.method} {request.path} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if not request.trailers and not any(chunks):
        data = (head + "\r\n").encode()                 # no body at all
    else:
        data = (head + "transfer-encoding: chunked\r\n\r\n").encode()
        for chunk in chunks:
            if chunk:
                data += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        data += b"0\r\n" + "".join(f"{k}: {v}\r\n"
                                    for k, v in request.trailers.items()).encode()
        data += b"\r\n"

    class Reply:
        def __init__(self) -> None:
            self.headers: list[tuple[str, str]] = []
            self.trailers: list[tuple[str, str]] = []
            self.body = b""
            self.in_trailers = False
            self.complete = False

        def on_header(self, name: bytes, value: bytes) -> None:
            target = self.trailers if self.in_trailers else self.headers
            target.append((name.decode("latin-1").lower(), value.decode("latin-1")))

        def on_headers_complete(self) -> None:
            self.in_trailers = True

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            self.complete = True

    reply = Reply()
    parser = httptools.HttpResponseParser(reply)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            while not reply.complete:
                received = sock.recv(65536)
                if not received:
                    break
                parser.feed_data(received)
        except ConnectionResetError:
            pass
    if not reply.complete:
        return Exchange(0, [], b"")
    return Exchange(parser.get_status_code(), reply.headers, reply.body, reply.trailers)


def send_all(port: int, requests: list[Request], keep_alive: bool = False) -> list[Exchange]:
    """Send requests in order; a request with ``until`` is repeated until it holds.

    With ``keep_alive`` they all go over one client connection (HTTP/1.1 keep-alive).
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10) if keep_alive else None
    try:
        return _send_each(port, requests, conn)
    finally:
        if conn is not None:
            conn.close()


def send_concurrently(port: int, requests: list[Request]) -> list[Exchange]:
    """Send all requests at once, each on its own connection; replies in request order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(lambda r: send(port, r), requests))


def _send_each(port: int, requests: list[Request],
               conn: http.client.HTTPConnection | None) -> list[Exchange]:
    results = []
    for request in requests:
        exchange = send(port, request, conn=conn)
        if request.until is not None:
            deadline = time.monotonic() + request.until_timeout
            while not request.until(exchange) and time.monotonic() < deadline:
                time.sleep(0.05)
                exchange = send(port, request, conn=conn)
        results.append(exchange)
    return results


def normalise(exchange: Exchange) -> dict[str, Any]:
    """The comparable form of a reply (see docs/conformance.md)."""
    headers = sorted((k, v) for k, v in exchange.headers if k not in RESPONSE_HEADERS_IGNORED)
    result: dict[str, Any] = {"status": exchange.status, "headers": headers,
                              "trailers": sorted(exchange.trailers)}
    echo = exchange.echo()
    if echo is not None:
        result["upstream_received"] = {
            "method": echo["method"],
            "path": echo["path"],
            "body": echo["body"],
            "headers": sorted((k, v) for k, v in echo["headers"]
                              if k not in UPSTREAM_HEADERS_IGNORED),
            "trailers": sorted((k, v) for k, v in echo.get("trailers", [])),
        }
    else:
        result["body"] = exchange.body.decode("utf-8", errors="replace")
    return result


def tcp_exchange(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send ``payload`` to 127.0.0.1:port, close the write side, read until EOF."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)
