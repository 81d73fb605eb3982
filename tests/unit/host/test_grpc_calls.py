"""gRPC calls in the runtime, answered by the test through ManualDispatcher (no sockets).

The filter is the conformance probe tests/filters/grpc_call.wat: it reports statuses and
callbacks in the request header x-grpc-trace once a call is done (grammar in the .wat).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.filters import FILTERS
from wasmetool.host import abi
from wasmetool.host.grpc_calls import parse_grpc_service
from wasmetool.testing.http import Exchange, HttpEmulator


@pytest.fixture(scope="module")
def probe() -> bytes:
    import wasmtime

    return wasmtime.wat2wasm((FILTERS / "grpc_call.wat").read_text())


@pytest.fixture
def emu(probe: bytes) -> Iterator[HttpEmulator]:
    with HttpEmulator(probe, clusters=["grpc", "dead"]) as e:
        yield e


def _request(emu: HttpEmulator, path: str) -> Exchange:
    ex = emu.new_exchange()
    ex.send_request_headers({":method": "GET", ":path": path, ":authority": "x",
                             ":scheme": "http"}, end_stream=True)
    return ex


def _trace(ex: Exchange) -> str | None:
    assert ex.forwarded_headers is not None, "the request is still paused"
    return ex.forwarded_headers.get("x-grpc-trace")


def test_unary_call_reaches_the_dispatcher_and_its_answer_the_plugin(emu: HttpEmulator) -> None:
    ex = _request(emu, "/unary")
    assert ex.forwarded_headers is None                      # paused until the answer
    (call,) = emu.dispatcher.open_grpc_streams()
    assert (call.request.cluster, call.request.path) == ("grpc", "/test.Echo/Unary")
    assert call.request.metadata == [(b"x-md", b"v1")]
    assert call.request.timeout_ms == 5000
    assert call.sent == [b"hello"] and call.half_closed
    call.reply(b"echo:hello")
    emu.run_pending()
    # a unary success is one proxy_on_grpc_receive on the root context, nothing else
    assert _trace(ex) == "S0 k5 R10:echo:hello L0"
    assert _trace(_request(emu, "/tokens")) == "T s2 x1 c1 s2 x2 c2 s1 x1 c1 s2 x2 c2 L0"


def test_unary_failure_is_one_close_with_status_and_message(emu: HttpEmulator) -> None:
    ex = _request(emu, "/fail")
    emu.dispatcher.grpc_streams[-1].close(7, b"nope{via_upstream}")
    emu.run_pending()
    assert _trace(ex) == "S0 k5 C7:nope{via_upstream} b0 L0"
    # the status is readable only during proxy_on_grpc_close
    vm = emu.host.all_vms[0]
    assert (vm.status_code, vm.status_message) == (abi.OK, b"")


def test_unary_ok_without_a_message_is_internal(emu: HttpEmulator) -> None:
    ex = _request(emu, "/unary")
    emu.dispatcher.grpc_streams[-1].close(0, b"")
    emu.run_pending()
    assert _trace(ex) == "S0 k5 C13: b0 L0"


def test_bidi_stream_reports_every_event_in_order(emu: HttpEmulator) -> None:
    ex = _request(emu, "/bidi")
    stream = emu.dispatcher.grpc_streams[-1]
    assert stream.request.timeout_ms is None                  # streams have no deadline
    assert stream.sent == [b"a", b"b"] and stream.half_closed
    stream.initial_metadata([(b":status", b"200"), (b"x-init", b"i")])
    stream.message(b"re:a")
    stream.message(b"re:b")
    emu.run_pending()
    assert ex.forwarded_headers is None                       # not closed yet
    stream.trailing_metadata([(b"grpc-status", b"0")])
    stream.close(0, b"via_upstream")
    emu.run_pending()
    assert _trace(ex) == ("S0 k6 s0 s0 M2[:status,x-init] R4:re:a R4:re:b T1[grpc-status] "
                          "C0:via_upstream a0 b0 b1 L0")


def test_close_ends_sending_and_later_sends_send_nothing(emu: HttpEmulator) -> None:
    ex = _request(emu, "/bidi-close")
    stream = emu.dispatcher.grpc_streams[-1]
    assert stream.sent == [b"a"] and stream.half_closed and not stream.cancelled
    stream.message(b"re:a")
    stream.close(0, b"via_upstream")
    emu.run_pending()
    assert _trace(ex) == "S0 k6 s0 c0 s0 R4:re:a C0:via_upstream a0 b0 b1 L0"


def test_cancelled_stream_gets_no_more_callbacks(emu: HttpEmulator) -> None:
    ex = _request(emu, "/cancel-stream")
    stream = emu.dispatcher.grpc_streams[-1]
    assert stream.cancelled and stream.sent == [b"a"]
    assert _trace(ex) == "S0 k6 s0 x0 x1 s1 L0"
    stream.message(b"late")
    stream.close(0, b"")
    emu.run_pending()
    assert emu.dispatcher.open_grpc_streams() == []
    # nothing arrived late: the next report still says L0
    nxt = _request(emu, "/unary")
    emu.dispatcher.grpc_streams[-1].reply(b"x")
    emu.run_pending()
    assert _trace(nxt) == "S0 k5 R1:x L0"


def test_unknown_cluster_is_parse_failure_and_takes_no_token(emu: HttpEmulator) -> None:
    assert _trace(_request(emu, "/nocluster")) == "S4 L0"
    assert _trace(_request(emu, "/stream-nocluster")) == "S4 L0"
    assert emu.dispatcher.grpc_streams == []


def test_failed_vm_resets_its_streams(emu: HttpEmulator) -> None:
    _request(emu, "/server")
    stream = emu.dispatcher.grpc_streams[-1]
    vm = emu.host.all_vms[0]
    vm.fail("test", "test")
    assert stream.cancelled


def test_grpc_service_proto_is_told_from_a_cluster_name() -> None:
    proto = b"\x0a\x0e\x0a\x04grpc\x12\x06a.test" + b"\x2a\x0a\x0a\x05X-Svc\x12\x01s"
    assert parse_grpc_service(proto) == ("grpc", "a.test", [(b"x-svc", b"s")])
    assert parse_grpc_service(b"") == ("", None, [])           # an empty message parses
    for name in (b"grpc", b"dead", b"nope", b"auth-service", b"\x0a\x09short"):
        assert parse_grpc_service(name) is None                   # names are names


def test_grpc_service_proto_in_the_emulator(emu: HttpEmulator) -> None:
    ex = _request(emu, "/proto")
    (call,) = emu.dispatcher.open_grpc_streams()
    assert call.request.cluster == "grpc" and call.request.path == "/test.Echo/Meta"
    assert call.request.metadata == [(b"x-svc", b"s"), (b"x-md", b"v1")]
    call.reply(b"ok")
    emu.run_pending()
    assert _trace(ex) == "S0 k5 R2:ok L0"
    assert _trace(_request(emu, "/proto-nocluster")) == "S10 L0"
