"""Where a local host most easily departs from Envoy 1.40, recorded from real Envoy.

Probe filters report status codes and values as headers (grammars at the top of
tests/filters/departures.wat and tcp_departures.wat); each check holds what Envoy
gives, runs on Envoy's replies and on ``wasmetool run``'s, and the normalised replies
must be equal.

1. the request headers a filter sees first: what Envoy's connection manager adds
   (x-forwarded-proto, :scheme, x-request-id when generate_request_id is on) and takes
   away (hop-by-hop headers, expect; te unless it is "trailers");
2. what a filter can still read of the request once its request headers continued:
   the request map is gone (BAD_ARGUMENT, an empty pairs list), request.* properties
   from it are NOT_FOUND, and in on_log every map is read-only;
3. proxy_continue_stream / proxy_close_stream / proxy_get_buffer_* / set_buffer_bytes
   statuses for every stream and buffer type, from an HTTP and from a network filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.envoy import run_envoy
from tests.support.exchange import Exchange, Request, normalise, send_all, tcp_exchange
from tests.support.plugins import ProxySetup, WasmPlugin
from tests.support.upstream import TcpEchoUpstream, run_tcp_echo_upstream
from tests.support.wasmetool_run import run_wasmetool

pytestmark = pytest.mark.integration

# the stream probe gives the same in every phase of an HTTP filter: continue_stream
# (DOWNSTREAM 0, UPSTREAM 12, 4 -> 2), close_stream (0, 0, 2), buffer status and bytes for
# types 0..9 (4 and 7 NOT_FOUND, 9 BAD_ARGUMENT, the rest an empty buffer: OK), and
# set_buffer_bytes on 2..9 (BAD_ARGUMENT, or NOT_FOUND for 4 and 7)
STREAM = "c0<2 k002 s0000100102 b0000100102 w22122122"
# the request probe once the filter's request headers continued (on_request_body,
# on_response_*): the map is gone, request.* from it NOT_FOUND, request.headers empty
GONE = "v2 p1 q1 n0#0 z2 a2 r2 d2 t2 e2 P1111101101011000"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

HOP_HEADERS = {"connection": "keep-alive, x-hop", "x-hop": "1", "keep-alive": "timeout=5",
               "proxy-connection": "x", "te": "trailers", "x-forwarded-for": "1.2.3.4",
               "x-request-id": "given-id"}
REQUESTS = [
    Request(path="/a", headers={"x-foo": "orig"}),
    Request("POST", "/b", headers={"x-foo": "orig"}, body=b"hello"),
    Request("POST", "/c", headers={"x-foo": "orig"}, body=[b"he", b"llo"]),
    Request("PUT", "/d"),
    Request(path="/e", headers=HOP_HEADERS),
    Request("POST", "/f", headers={"expect": "100-continue"}, body=b"abc"),
    Request(path="/g", headers={"te": "gzip, trailers", "referer": "http://r/"}),
    Request(path="/h?x=1", headers={"te": "gzip"}),
    Request("POST", "/i", headers={"x-foo": "orig"}, body=[b"ab"], trailers={"x-foo": "t"}),
    Request(path="/j"),
]


def _reports(r: list[Exchange]) -> list[dict[str, str | None]]:
    out = []
    for x in r:
        assert x.status == 200 and x.echo() is not None
        report: dict[str, str | None] = {h: x.echo_header(h) for h in
                                         ("x-p-keys", "x-p-rh", "x-prev-sb", "x-prev-lg", "te")}
        report.update({h: x.header(h) for h in ("x-p-rb", "x-p-sh")})
        out.append(report)
    return out


def _check_departures(r: list[Exchange], _log: str) -> None:
    a, b, c, d, e, f, g, h, i, j = reports = _reports(r)
    # 1. what the connection manager added and removed before the filter ran
    assert a["x-p-keys"] == (":authority,:path,:method,:scheme,user-agent,accept-encoding,"
                             "x-foo,x-forwarded-proto n=8 s=135 r=1:")
    assert b["x-p-keys"] == (":authority,:path,:method,:scheme,content-length,user-agent,"
                             "accept-encoding,x-foo,x-forwarded-proto n=9 s=151 r=1:")
    # a chunked body: transfer-encoding is gone
    assert c["x-p-keys"] == (":authority,:path,:method,:scheme,user-agent,accept-encoding,"
                             "x-foo,x-forwarded-proto n=8 s=136 r=1:")
    # hop-by-hop headers and the headers `connection` names are gone; te: trailers stays
    assert e["x-p-keys"] == (":authority,:path,:method,:scheme,user-agent,accept-encoding,te,"
                             "x-forwarded-for,x-request-id,x-forwarded-proto n=10 s=178 r=0:8")
    assert e["te"] == "trailers"
    assert f["x-p-keys"] == (":authority,:path,:method,:scheme,content-length,user-agent,"
                             "accept-encoding,x-forwarded-proto n=8 s=142 r=1:")   # no expect
    assert g["x-p-keys"] == (":authority,:path,:method,:scheme,user-agent,accept-encoding,te,"
                             "referer,x-forwarded-proto n=9 s=152 r=1:")
    assert g["te"] == "trailers"                     # "gzip, trailers" becomes "trailers"
    assert h["x-p-keys"] == (":authority,:path,:method,:scheme,user-agent,accept-encoding,"
                             "x-forwarded-proto n=7 s=130 r=1:") and h["te"] is None
    # 3. stream control and buffers, the same in every phase
    for rep in reports:
        assert rep["x-p-rh"] == STREAM
    # 2. after the request headers continued: in on_request_body, on_response_headers
    # (where the response map is there: h0=200 y0 j0) and on_response_body (gone too)
    assert a["x-p-sh"] == (f"{GONE} h0=200 y0 j0 X0:00000000/0:0000000000000000/"
                           f"0:0000000000000000/0:0000000000000000 {STREAM}")
    assert b["x-p-rb"] == (f"{GONE} h2 y2 j2 X0:00000000/0:0000000000000000/"
                           f"0:0500000000000000/0:0500000000000000 {STREAM}")
    assert b["x-prev-sb"] == (f"{GONE} h2 y2 j2 X0:00000000/0:0000000000000000/"
                              f"0:0000000000000000/0:0000000000000000 {STREAM}")
    # in on_log: the maps are back, read-only (add/replace/remove and the size answer
    # BAD_ARGUMENT, the request trailers map exists), request.* are there again
    assert b["x-prev-lg"] == ("v0=orig p0=orig q0=/a n0#10 z2 a2 r2 d2 t1 e0=orig "
                              "P0000001001000000 h0=200 y2 j2 X0:0a000000/0:2301000000000000/"
                              f"0:0000000000000000/0:2301000000000000 {STREAM}")
    assert d["x-prev-lg"] is not None and d["x-prev-lg"].startswith(
        "v0=orig p0=orig q0=/c n0#12 z2 a2 r2 d2 t1 e0=orig P0000001001000000 h0=200 y2 j2 "
        "X0:0c000000/0:a502000000000000/0:0500000000000000/0:aa02000000000000")
    # request trailers: gone after they passed the filter (t2); on_log has none (t1, an
    # empty map), and request.total_size never counts them
    assert i["x-p-sh"] == (f"{GONE} h0=200 y0 j0 X0:00000000/0:0000000000000000/"
                           f"0:0200000000000000/0:0200000000000000 {STREAM}")
    assert j["x-prev-lg"] is not None and j["x-prev-lg"].startswith(
        "v0=orig p0=orig q0=/i n0#12 z2 a2 r2 d2 t1 e0=orig P0000001001000000 h0=200 y2 j2 "
        "X0:0c000000/0:9a02000000000000/0:0200000000000000/0:9c02000000000000")


def _check_paused(r: list[Exchange], _log: str) -> None:
    reports = _reports(r)
    # a filter that paused its request headers and resumed them (from on_tick) lets go of
    # them just the same: in on_request_body and the response phase they are gone
    for rep in reports:
        assert rep["x-p-rh"] == STREAM
        assert rep["x-p-sh"] is not None and rep["x-p-sh"].startswith(f"{GONE} h0=200 y0 j0")
    assert reports[1]["x-p-rb"] == (f"{GONE} h2 y2 j2 X0:00000000/0:0000000000000000/"
                                    f"0:0500000000000000/0:0500000000000000 {STREAM}")


def _check_request_id(r: list[Exchange], _log: str) -> None:
    a, _b, _c, _d, e, *_ = _reports(r)
    # Envoy's default: a request without x-request-id gets a UUID4 one, last
    assert a["x-p-keys"] == (":authority,:path,:method,:scheme,user-agent,accept-encoding,"
                             "x-foo,x-forwarded-proto,x-request-id n=9 s=183 r=0:36")
    assert UUID.match(r[0].echo_header("x-request-id") or "")
    assert r[4].echo_header("x-request-id") == "given-id"     # one it came with is kept
    assert e["x-p-keys"] is not None and e["x-p-keys"].endswith("n=10 s=178 r=0:8")


def _scrub(normalised: dict[str, Any]) -> dict[str, Any]:
    """A generated x-request-id differs run to run: keep that it is a UUID."""
    received = normalised.get("upstream_received")
    if received:
        received["headers"] = [(k, "<uuid4>" if k == "x-request-id" and UUID.match(v) else v)
                               for k, v in received["headers"]]
    return normalised


CASES = [
    ("host_departures", False, None, _check_departures),
    ("host_departures_request_id", True, None, _check_request_id),
    ("host_departures_paused_headers", False, "pause", _check_paused),
]


@pytest.fixture(scope="module")
def departures_wasm(compiled_filters: Callable[[str], Path]) -> Path:
    return compiled_filters("departures")


def _setup(upstream: str, wasm: Path, request_id: bool, config: str | None) -> ProxySetup:
    return ProxySetup(upstream=upstream, generate_request_id=request_id,
                      http_filters=[WasmPlugin(name="departures", wasm=wasm,
                                               configuration=config)])


def _envoy(name: str, setup: ProxySetup, check: Callable[[list[Exchange], str], None],
           workdir: Path, cache: dict[str, Any]) -> list[dict[str, Any]]:
    if name not in cache:
        with run_envoy(setup, workdir) as envoy:
            replies = send_all(envoy.port, REQUESTS)
            assert envoy.alive()
            log = envoy.logs()
        check(replies, log)
        cache[name] = [_scrub(normalise(x)) for x in replies]
    return cache[name]


@pytest.mark.parametrize(("name", "request_id", "config", "check"), CASES,
                         ids=[c[0] for c in CASES])
def test_envoy(name: str, request_id: bool, config: str | None,
               check: Callable[[list[Exchange], str], None], departures_wasm: Path,
               upstreams: dict[str, Any], envoy_results: dict[str, Any],
               tmp_path: Path) -> None:
    envoy_results.pop(name, None)
    _envoy(name, _setup(upstreams["upstream"].url, departures_wasm, request_id, config),
           check, tmp_path, envoy_results)


@pytest.mark.parametrize(("name", "request_id", "config", "check"), CASES,
                         ids=[c[0] for c in CASES])
def test_wasmetool(name: str, request_id: bool, config: str | None,
                   check: Callable[[list[Exchange], str], None], departures_wasm: Path,
                   upstreams: dict[str, Any], envoy_results: dict[str, Any],
                   tmp_path: Path) -> None:
    setup = _setup(upstreams["upstream"].url, departures_wasm, request_id, config)
    expected = _envoy(name, setup, check, tmp_path / "envoy", envoy_results)
    with run_wasmetool(setup, tmp_path / "wasmetool") as proxy:
        replies = send_all(proxy.port, REQUESTS)
        assert proxy.alive()
        log = proxy.logs()
    check(replies, log)
    assert [_scrub(normalise(x)) for x in replies] == expected


# --- the network filter ------------------------------------------------------------------

# from a network filter: continue_stream and close_stream on the HTTP stream types answer
# OK (4 -> BAD_ARGUMENT); buffers as from an HTTP filter; header maps BAD_ARGUMENT
TCP_PROBE = "c002k002s0000100102b0000100102w22122122m2222|"


@pytest.fixture(scope="module")
def tcp_upstream() -> Iterator[TcpEchoUpstream]:
    with run_tcp_echo_upstream() as up:
        yield up


def _tcp_setup(compiled_filters: Callable[[str], Path], up: TcpEchoUpstream) -> ProxySetup:
    return ProxySetup(upstream=up.address, tcp=True, network_filters=[
        WasmPlugin("tcp_departures", compiled_filters("tcp_departures"))])


def _check_tcp(reply: bytes) -> None:
    assert reply == f"U{TCP_PROBE}N{TCP_PROBE}D{TCP_PROBE}hello".encode()


def test_envoy_network_filter_statuses(compiled_filters: Callable[[str], Path],
                                       tcp_upstream: TcpEchoUpstream, tmp_path: Path) -> None:
    with run_envoy(_tcp_setup(compiled_filters, tcp_upstream), tmp_path) as envoy:
        _check_tcp(tcp_exchange(envoy.port, b"hello"))


def test_wasmetool_network_filter_statuses(compiled_filters: Callable[[str], Path],
                                           tcp_upstream: TcpEchoUpstream,
                                           tmp_path: Path) -> None:
    with run_wasmetool(_tcp_setup(compiled_filters, tcp_upstream), tmp_path) as proxy:
        _check_tcp(tcp_exchange(proxy.port, b"hello"))
