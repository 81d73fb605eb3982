"""The C head serialiser (wasmetool/proxy/_wire.c) gives the Python reference's bytes."""

from __future__ import annotations

import pytest

from wasmetool.proxy import http1, upstream
from wasmetool.proxy.http1 import HeaderInjection, head_bytes, head_bytes_py, status_line
from wasmetool.proxy.upstream import request_head, request_head_py

RESPONSES = [
    [(b":status", b"200"), (b"content-length", b"2"), (b"content-type", b"text/plain")],
    [(b":status", b"204")],
    [],
    [(b":status", b"200"), (b"connection", b"keep-alive"), (b"transfer-encoding", b"chunked"),
     (b"x-a", b""), (b"x-b", b"v" * 300), (b":other", b"skipped")],
    [(b"x-%d" % i, b"%d" % i) for i in range(100)],        # more than the C stack bitmap
]
REQUESTS = [
    [(b":authority", b"h:1"), (b":path", b"/p?q=1"), (b":method", b"GET"), (b":scheme", b"http"),
     (b"user-agent", b"wrk"), (b"x-forwarded-proto", b"http")],
    [(b":method", b"POST"), (b":path", b"/"), (b"content-length", b"3"), (b"host", b"dropped"),
     (b"te", b"trailers"), (b":authority", b"a")],
    [(b":method", b"HEAD"), (b":method", b"PUT"), (b"keep-alive", b"5")],   # last one wins
    [],
    [(b"x-%d" % i, b"%d" % i) for i in range(100)],
]


def test_the_c_serialiser_is_built() -> None:
    """CI builds the extension: without it the proxy silently runs the slower Python one."""
    assert http1._wire is not None


@pytest.mark.parametrize("headers", RESPONSES)
@pytest.mark.parametrize("extra", [b"", b"content-length: 0\r\n",
                                   b"date: x\r\nconnection: close\r\n"])
def test_head_bytes_same_as_python(headers: list[tuple[bytes, bytes]], extra: bytes) -> None:
    for first in (status_line(200), b"0\r\n"):
        assert head_bytes(first, headers, extra) == head_bytes_py(first, headers, extra)


@pytest.mark.parametrize("headers", REQUESTS)
@pytest.mark.parametrize("end_stream", [True, False])
@pytest.mark.parametrize("prefix", [b"", b"/base"])
def test_request_head_same_as_python(headers: list[tuple[bytes, bytes]], end_stream: bool,
                                     prefix: bytes) -> None:
    assert request_head(headers, end_stream, prefix) == \
        request_head_py(headers, end_stream, prefix)


@pytest.mark.parametrize("bad", [(b"x-a", b"v\r\nx-injected: 1"), (b"x-a\nb", b"v"),
                                 (b":path", b"/\r\nx: y"), (b":method", b"GET /\n"),
                                 (b":authority", b"h\n")])
def test_line_feeds_are_refused_by_both(bad: tuple[bytes, bytes]) -> None:
    req = [(b":method", b"GET"), (b":path", b"/"), bad]
    with pytest.raises(HeaderInjection):
        request_head(req, True, b"")
    with pytest.raises(HeaderInjection):
        request_head_py(req, True, b"")
    if not bad[0].startswith(b":"):
        with pytest.raises(HeaderInjection):
            head_bytes(status_line(200), [bad])
        with pytest.raises(HeaderInjection):
            head_bytes_py(status_line(200), [bad])


def test_odd_inputs_fall_back_to_python() -> None:
    """Lists of lists, str values: the C version declines and the Python one answers."""
    odd = [[b"x-a", b"1"]]
    assert head_bytes(b"HTTP/1.1 200 OK\r\n", odd) == b"HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\n"  # type: ignore[arg-type]
    assert upstream._wire is http1._wire
    assert request_head([(b":path", b"/x")], True, b"")[0] == b"GET /x HTTP/1.1\r\nhost: \r\n\r\n"


RAW_RESPONSES = [
    [(b"Content-Length", b"2"), (b"Content-Type", b"text/plain"), (b"Date", b"x")],
    [(b"Transfer-Encoding", b"chunked"), (b"Connection", b"keep-alive"), (b"X-Up", b"1")],
    [(b"keep-alive", b"timeout=5"), (b"TE", b"trailers"), (b"x-already-lower", b"v")],
    [],
    [(b"X-%d" % i, b"%d" % i) for i in range(70)],
]


@pytest.mark.parametrize("raw", RAW_RESPONSES)
def test_response_head_same_as_python(raw: list[tuple[bytes, bytes]]) -> None:
    assert upstream.response_head(raw, b"200") == upstream.response_head_py(raw, b"200")
    headers, framed = upstream.response_head(raw, b"200")
    assert headers[0] == (b":status", b"200")
    assert framed == any(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in raw)


def test_request_ids_are_distinct_version_4_uuids_as_python_formats_them() -> None:
    import os
    import uuid

    ids = http1.RequestIds()
    seen = [ids.next() for _ in range(3 * http1.REQUEST_ID_POOL // 16 + 5)]  # three refills
    assert len(set(seen)) == len(seen)
    for rid in seen[:50]:
        parsed = uuid.UUID(rid.decode())
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert rid.decode() == str(parsed)
    pool = os.urandom(64)
    for pos in (0, 16, 48):
        assert http1._wire.uuid4(pool, pos) == http1.uuid4_py(pool, pos)
    assert http1._wire.uuid4(pool, 49) is NotImplemented      # not 16 bytes left
