"""The `date` response header, added as Envoy's HTTP connection manager adds it.

Envoy adds `date` to every response that has none (an upstream's own `date` is kept),
after the filters' `on_response_headers`: filters never see it there, but the header is in
the stream's response map by `on_log` (`response.headers`, `response.headers_bytes`,
`response.total_size` count it).
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

from wasmetool.host import abi

_cache: list[Any] = [-1, b""]      # [second, b"Sun, 22 Nov 2026 00:33:56 GMT"]


def http_date(now: float | None = None) -> bytes:
    """The IMF-fixdate for ``now`` (default: the current second), cached per second."""
    t = time.time() if now is None else now
    second = int(t)
    if _cache[0] != second:
        _cache[1] = formatdate(second, usegmt=True).encode()
        _cache[0] = second
    return _cache[1]  # type: ignore[no-any-return]


def date_line(headers: list[tuple[bytes, bytes]], stream: Any) -> bytes:
    """Add a `date` to a response about to be written, unless ``headers`` has one: into
    ``stream``'s response header map (so `on_log` sees it, as in Envoy) and, when
    ``headers`` is not that map, as the header line returned for the wire (else b"")."""
    for name, _value in headers:
        if name == b"date":
            return b""
    date = http_date()
    get_map = getattr(stream, "get_map", None)
    response = get_map(abi.MAP_RESPONSE_HEADERS) if get_map is not None else None
    if response is headers:             # the usual case: the map itself is written
        response.append((b"date", date))
        return b""
    if response is not None and not any(k == b"date" for k, _v in response):
        response.append((b"date", date))
    return b"date: " + date + b"\r\n"
