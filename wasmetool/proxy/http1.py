"""HTTP/1.1 wire helpers shared by the proxy, the upstream pool and the admin endpoint.

Headers travel inside the host as ``list[tuple[bytes, bytes]]`` with lower-case names;
requests carry ``:method :path :authority :scheme`` and responses ``:status``.
"""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Any

_wire: Any
try:    # the optional C serialiser (_wire.c); the Python functions below are the fallback
    from wasmetool.proxy import _wire  # type: ignore[attr-defined, no-redef]
except ImportError:
    _wire = None

# Hop-by-hop headers: consumed by each HTTP/1.1 hop, never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
    b"upgrade", b"te", b"trailer",
})

STATUS_LINES: dict[int, bytes] = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    for status in HTTPStatus
}
STATUS_BYTES: dict[int, bytes] = {code: str(code).encode() for code in range(100, 600)}
NO_BODY_STATUSES = frozenset({204, 304})


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} Unknown\r\n".encode()
    return line


class HeaderInjection(ValueError):
    """A header name or value carries CR/LF (a filter tried to inject a header)."""


def head_bytes(first_line: bytes, headers: list[tuple[bytes, bytes]],
               extra: bytes = b"") -> bytes:
    """Serialise a start line and headers (pseudo and hop-by-hop skipped), CR/LF checked.

    ``extra`` is zero or more complete header lines (each ending in CRLF) added last.
    """
    if _wire is not None:
        data = _wire.head_bytes(first_line, headers, extra, HOP_BY_HOP)
        if data is None:
            raise HeaderInjection("CR or LF inside a header")
        if data is not NotImplemented:
            return data  # type: ignore[no-any-return]
    return head_bytes_py(first_line, headers, extra)


def head_bytes_py(first_line: bytes, headers: list[tuple[bytes, bytes]],
                  extra: bytes = b"") -> bytes:
    """:func:`head_bytes` in Python: the reference, and the path when the C one is not
    built (or is given headers that are not a list of (bytes, bytes) tuples)."""
    hop = HOP_BY_HOP
    lines = [k + b": " + v for k, v in headers if k not in hop and k[:1] != b":"]
    count = len(lines)
    if extra:
        lines.append(extra[:-2])
        count += extra.count(b"\n")
    lines.append(b"\r\n")
    data = first_line + b"\r\n".join(lines)
    # One C-level count instead of a per-header check: any embedded LF shows up here.
    if data.count(b"\n") != count + 2:
        raise HeaderInjection("CR or LF inside a header")
    return data


def get_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    value = get_header(headers, b"connection")
    if not value:
        return set()
    return {token.strip().lower() for token in value.split(b",")}


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def trailer_block(trailers: list[tuple[bytes, bytes]]) -> bytes:
    return head_bytes(b"0\r\n", trailers)


REQUEST_ID_POOL = 4096      # random bytes drawn at once: 256 request ids per os.urandom


class RequestIds:
    """Envoy's x-request-id values (UUID4) for one server: random bytes are drawn from
    os.urandom in a pool and formatted in C, about 20x cheaper than str(uuid.uuid4())."""

    __slots__ = ("pool", "pos")

    def __init__(self) -> None:
        self.pool = b""
        self.pos = REQUEST_ID_POOL

    def next(self) -> bytes:
        pos = self.pos
        if pos >= REQUEST_ID_POOL:
            self.pool = os.urandom(REQUEST_ID_POOL)
            pos = 0
        self.pos = pos + 16
        if _wire is not None:
            rid = _wire.uuid4(self.pool, pos)
            if rid is not NotImplemented:
                return rid  # type: ignore[no-any-return]
        return uuid4_py(self.pool, pos)


def uuid4_py(pool: bytes, pos: int) -> bytes:
    """The 16 bytes at pool[pos:] as a version-4 UUID: the reference of _wire.uuid4."""
    b = bytearray(pool[pos:pos + 16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()
