"""gRPC callouts through the test API and `wasmetool test`, on tests/filters/grpc_call.wat
(it reports every gRPC callback it saw in the request header x-grpc-trace)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wasmetool.testing import HttpEmulator


def req(path: str) -> dict[str, str]:
    return {":method": "GET", ":path": path, ":authority": "example.com"}


def test_unary_call_inspected_and_answered(wasm) -> None:
    emu = HttpEmulator(wasm("grpc_call"), clusters=["grpc", "silent"])
    ex = emu.new_exchange().send_request_headers(req("/unary"))
    assert ex.request_paused
    (call,) = emu.open_grpc_calls()
    assert (call.cluster, call.path, call.timeout_ms) == ("grpc", "/test.Echo/Unary", 5000)
    assert call.metadata == [(b"x-md", b"v1")] and call.sent == [b"hello"]
    emu.answer_grpc_call(b"world")
    assert ex.forwarded_headers["x-grpc-trace"] == "S0 k5 R5:world L0"
    rec = emu.host_calls("proxy_grpc_call")[0]
    assert rec.args["service"] == "'test.Echo'" and rec.args["message"] == "'hello'"


def test_failure_and_timeout_on_the_virtual_clock(wasm) -> None:
    emu = HttpEmulator(wasm("grpc_call"), clusters=["grpc", "silent"])
    ex = emu.new_exchange().send_request_headers(req("/fail"))
    emu.answer_grpc_call(fail=True, status=7, status_message="denied")
    # C: the close as the filter saw it; b0: its proxy_grpc_close on the closed call
    assert ex.forwarded_headers["x-grpc-trace"] == "S0 k5 C7:denied b0 L0"

    ex = emu.new_exchange().send_request_headers(req("/slow"))     # timeout 300 ms
    emu.advance(0.299)
    assert ex.request_paused
    emu.advance(0.001)
    assert ex.forwarded_headers["x-grpc-trace"] == "S0 k9 C14:upstream request timeout b0 L0"


def test_stream_answered_part_by_part(wasm) -> None:
    emu = HttpEmulator(wasm("grpc_call"), clusters=["grpc"])
    ex = emu.new_exchange().send_request_headers(req("/bidi"))
    (call,) = emu.open_grpc_calls()
    assert call.sent == [b"a", b"b"] and call.half_closed and call.timeout_ms is None
    call.initial_metadata([(b"k", b"v")])
    call.message(b"A")
    call.message(b"B")
    call.close(0)
    emu.pump()
    assert ex.forwarded_headers["x-grpc-trace"] == \
        "S0 k6 s0 s0 M1[k] R1:A R1:B C0: a0 b0 b1 L0"

    ex = emu.new_exchange().send_request_headers(req("/cancel-stream"))
    assert emu.grpc_calls[-1].cancelled and emu.open_grpc_calls() == []


def test_grpc_answers_in_yaml(cli, wat, tmp_path: Path) -> None:
    shutil.copy(wat("grpc_call"), tmp_path / "grpc_call.wasm")
    path = tmp_path / "grpc.test.yaml"
    path.write_text("""\
filter: grpc_call.wasm
clusters: [grpc, silent]
cases:
  - name: unary answered
    request: {path: /unary}
    grpc_calls:
      - message: world
        expect: {cluster: grpc, service: test.Echo, method: Unary,
                 metadata: {x-md: v1}, message: hello}
    expect:
      grpc_calls: 1
      upstream: {headers: {x-grpc-trace: "S0 k5 R5:world L0"}}
  - name: unary fails
    request: {path: /fail}
    grpc_calls: [{fail: true, status: 7, status_message: denied}]
    expect:
      upstream: {headers: {x-grpc-trace: "S0 k5 C7:denied b0 L0"}}
  - name: slow call times out
    request: {path: /slow}
    grpc_calls: [{timeout: true}]
    expect:
      upstream: {headers: {x-grpc-trace: {contains: "C14:upstream request timeout"}}}
""")
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err
    assert "3 cases: 3 passed" in done.out
