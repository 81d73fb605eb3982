"""The `date` response header, added as Envoy adds it (after the filters' response
headers, kept when the upstream sent one, visible in the stream's map by on_log)."""

from __future__ import annotations

from wasmetool.host import abi
from wasmetool.proxy.date_header import date_line, http_date


class Stream:
    def __init__(self, response: list[tuple[bytes, bytes]] | None) -> None:
        self.response = response

    def get_map(self, map_type: int) -> list[tuple[bytes, bytes]] | None:
        return self.response if map_type == abi.MAP_RESPONSE_HEADERS else None


def test_http_date_is_an_imf_fixdate() -> None:
    assert http_date(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(1795307696.9) == b"Sun, 22 Nov 2026 00:34:56 GMT"


def test_date_goes_into_the_streams_map_and_on_the_wire_once() -> None:
    # the stream's own map is what is written: the date goes into it, no extra line
    headers = [(b":status", b"200"), (b"x-a", b"b")]
    assert date_line(headers, Stream(headers)) == b""
    assert headers[-1][0] == b"date" and len(headers) == 3
    # a local reply writes a copy: the date is added to the map and as a header line
    response = [(b":status", b"403")]
    line = date_line([(b"x-local", b"1")], Stream(response))
    assert line.startswith(b"date: ") and line.endswith(b" GMT\r\n")
    assert [k for k, _ in response] == [b":status", b"date"]
    # no filter chain (no map): only the line
    assert date_line([], object()).startswith(b"date: ")


def test_an_upstream_date_is_kept() -> None:
    headers = [(b":status", b"200"), (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT")]
    assert date_line(headers, Stream(headers)) == b""
    assert headers == [(b":status", b"200"), (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT")]
