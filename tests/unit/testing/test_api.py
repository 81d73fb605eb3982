"""wasmetool.testing on the hand-written WAT filters: what a filter author would check."""

from __future__ import annotations

import pytest

from wasmetool.errors import WasmetoolError
from wasmetool.testing import (
    HttpEmulator,
    RootEmulator,
    StrictModeError,
    TcpEmulator,
    load_filter,
)

GET = {":method": "GET", ":path": "/", ":authority": "example.com", ":scheme": "http"}


def req(path: str, **extra: str) -> dict[str, str]:
    return {**GET, ":path": path, **extra}


def test_load_from_file_and_store_ref(wat, cli) -> None:
    path = wat("config")
    emu = load_filter(str(path), configuration="plugin-cfg", vm_configuration="vm-cfg")
    ex = emu.request(req("/"))
    assert ex.forwarded_headers["x-plugin-config"] == "plugin-cfg"
    assert ex.forwarded_headers["x-vm-config"] == "vm-cfg"
    emu.close()

    stored = cli("build", "precompiled", str(path), "-t", "me/config:v1", "--root-id", "r1")
    assert stored.code == 0, stored.err
    emu = HttpEmulator.load("me/config:v1", configuration="from-ref")
    assert emu.host.plugins[0].config.root_id == "r1"     # the image's root id
    assert emu.request(req("/")).forwarded_headers["x-plugin-config"] == "from-ref"
    emu.close()

    with pytest.raises(WasmetoolError, match="does not exist"):
        load_filter("./missing.wasm")


def test_step_by_step_stream_reads_back_what_the_filter_left(wasm) -> None:
    emu = HttpEmulator(wasm("headers"))
    ex = emu.new_exchange()
    ex.send_request_headers(req("/", **{"x-replace-me": "a", "x-remove-me": "b"}))
    assert ex.forwarded_headers["x-added-req"] == "yes"
    assert ex.forwarded_headers["x-replace-me"] == "replaced"
    assert "x-remove-me" not in ex.forwarded_headers
    assert ex.action("request_headers") == "Continue"
    ex.send_request_body(b"hello", end_stream=True)
    assert ex.forwarded_body == b"hello" and ex.request_end
    ex.send_response_headers_upstream({":status": "201", "x-upstream-name": "u"})
    ex.send_response_body_upstream(b"done")
    assert ex.status == 201 and ex.body == b"done"
    assert ex.headers["x-added-resp"] == "yes" and "x-upstream-name" not in ex.headers
    ex.complete()
    names = [e.name for e in ex.trace if e.kind == "callback"]
    assert names[-3:] == ["proxy_on_log", "proxy_on_done", "proxy_on_delete"]


def test_body_buffering_actions_and_trailers(wasm) -> None:
    emu = HttpEmulator(wasm("body"))
    ex = emu.new_exchange()
    ex.send_request_headers(req("/", **{"x-rewrite-response": "1"}))
    ex.send_request_body(b"abc", end_stream=False)
    assert ex.forwarded_body == b"" and ex.request_paused      # buffered by the filter
    assert ex.current_request_body == b"abc"
    assert "content-length" not in ex.current_request_headers
    ex.send_request_body(b"def", end_stream=True)
    assert ex.forwarded_body == b"<<abcdef>>" and not ex.request_paused
    assert ("proxy_on_request_body", "Pause") in ex.actions
    ex.send_response_headers_upstream({":status": "200"})
    ex.send_response_body_upstream(b"upstream-body", end_stream=True)
    assert ex.body == b"rewritten:6:upstream-body"


def test_http_call_answer_fail_and_time_out(wasm) -> None:
    emu = HttpEmulator(wasm("http_call"), clusters=["callout"])
    ex = emu.new_exchange().send_request_headers(req("/"))
    assert ex.request_paused and ex.forwarded_headers is None
    (call,) = emu.pending_http_calls()
    assert (call.cluster, call.method, call.path) == ("callout", "GET", "/auth?x=1")
    emu.answer_http_call(200, {"x-upstream-name": "auth"}, body="ok-body")
    assert not ex.paused
    assert ex.forwarded_headers["x-callout-status"] == "200"
    assert ex.forwarded_headers["x-callout-upstream"] == "auth"
    assert ex.forwarded_headers["x-callout-body"] == "ok-body"

    ex = emu.new_exchange().send_request_headers(req("/"))
    emu.answer_http_call(fail=True)
    assert ex.forwarded_headers["x-callout-failed"] == "1"

    # a timeout is driven by the virtual clock: nothing happens before it passes
    ex = emu.new_exchange().send_request_headers(req("/"))
    call = emu.pending_http_calls()[0]
    emu.advance(call.timeout_ms / 1000 - 0.001)
    assert ex.request_paused and call.state == "pending"
    emu.advance(0.002)
    assert call.state == "timed_out" and ex.forwarded_headers["x-callout-failed"] == "1"

    ex = emu.request(req("/unknown"))              # a cluster the test did not declare
    assert ex.forwarded_headers["x-callout-error"] == "2"


def test_ticks_are_deterministic_on_the_virtual_clock(wasm) -> None:
    def run() -> list[str]:
        emu = HttpEmulator(wasm("tick"))
        exchanges = [emu.new_exchange().send_request_headers(req(f"/{i}")) for i in range(3)]
        seen = [str(sum(e.request_paused for e in exchanges))]
        assert emu.advance(0.009) == 0            # the tick is 10 ms
        seen.append(str(sum(e.request_paused for e in exchanges)))
        assert emu.advance(0.001) == 1
        seen += [e.forwarded_headers["x-resumed-by"] for e in exchanges]
        seen.append(str(emu.now_ns))
        emu.close()
        return seen

    first = run()
    assert first[:5] == ["3", "3", "tick", "tick", "tick"]
    assert run() == first                          # same clock, same result


def test_resume_a_paused_stream_from_the_test(wasm) -> None:
    emu = HttpEmulator(wasm("stream_control"))
    ex = emu.new_exchange().send_request_headers(req("/pause-response"))
    ex.send_response_headers_upstream({":status": "200"}, end_stream=True)
    assert ex.response_paused and ex.response_headers is None
    ex.resume("response")
    assert ex.status == 200 and not ex.paused
    with pytest.raises(AssertionError, match="not paused"):
        ex.resume("response")


def test_local_reply_and_properties(wasm) -> None:
    emu = HttpEmulator(wasm("local_reply"))
    ex = emu.request(req("/deny"))
    assert ex.local_reply is not None and ex.status == 403
    assert ex.body == b"denied by wasm filter\n" and ex.headers["x-local-reply"] == "wasm"
    assert ex.forwarded_headers is None

    emu = HttpEmulator(wasm("http_call"), clusters=["callout"], name="callout-filter")
    ex = emu.new_exchange().send_request_headers(req("/p?q=1"))      # paused: a call out
    assert ex.get_property("request.path") == b"/p?q=1"
    assert ex.get_property(["request", "method"]) == b"GET"
    assert ex.get_property("plugin_name") == b"callout-filter"
    assert ex.get_property("source.address") == b"127.0.0.1:40000"


def test_shared_data_queues_metrics_and_logs(wasm) -> None:
    emu = HttpEmulator(wasm("shared_data"))
    emu.set_shared_data("counter", (41).to_bytes(4, "little"))
    ex = emu.request(req("/"))
    assert ex.headers["x-counter"] == "42"
    assert emu.shared_data("counter") == (42).to_bytes(4, "little")

    root = RootEmulator(wasm("queue_receiver"))
    assert root.enqueue("events", "first") == 0
    assert root.enqueue("events", "second") == 0
    assert root.shared_data("last") == b"second"
    assert root.enqueue("nope", "x") == 1                    # NOT_FOUND

    emu = HttpEmulator(wasm("metrics"), log_level="debug")
    emu.request(req("/"))
    emu.request(req("/"))
    assert emu.metric("conformance_requests") == 2
    assert emu.metrics()["conformance_level"] == 20
    assert emu.metrics()["conformance_sizes"] == 2          # histogram: count
    assert "conformance warn" in emu.log_messages("warn")
    assert "conformance debug" in emu.logs_by_level()["debug"]


def test_tcp_connection_data_and_close(wasm) -> None:
    emu = TcpEmulator(wasm("tcp"))
    conn = emu.connect()
    conn.client_sends(b"ping")
    conn.upstream_sends(b"pong")
    assert conn.upstream == b"[down]ping" and conn.downstream == b"[up]pong"
    assert conn.actions == [("proxy_on_new_connection", "Continue"),
                            ("proxy_on_downstream_data", "Continue"),
                            ("proxy_on_upstream_data", "Continue")]
    assert not conn.paused
    conn.client_closes()
    assert "tcp filter: new connection" in emu.log_messages("info")
    names = [e.name for e in emu.trace if e.kind == "callback"]
    assert "proxy_on_downstream_connection_close" in names


def test_trace_decodes_host_call_arguments(wasm) -> None:
    emu = HttpEmulator(wasm("headers"))
    emu.request(req("/"))
    (add,) = [e for e in emu.host_calls("proxy_add_header_map_value")
              if e.args["map"] == "request_headers"]
    assert add.args == {"map": "request_headers", "key": "'x-added-req'", "value": "'yes'"}
    assert add.status == "OK"
    text = emu.trace_tail()
    assert "proxy_on_request_headers(num_headers=4, end_of_stream=true) = Continue" in text
    assert HttpEmulator(wasm("headers"), trace=False).trace == []


def test_strict_mode_fails_on_a_failing_host_call(wasm) -> None:
    lenient = HttpEmulator(wasm("http_call"), clusters=["callout"])
    assert lenient.request(req("/unknown")).forwarded_headers["x-callout-error"] == "2"
    strict = HttpEmulator(wasm("http_call"), clusters=["callout"], strict=True)
    with pytest.raises(StrictModeError) as failed:
        strict.new_exchange().send_request_headers(req("/unknown"))
    message = str(failed.value)
    assert "proxy_http_call(cluster='nope'" in message and "BAD_ARGUMENT" in message
    allowed = HttpEmulator(wasm("http_call"), clusters=["callout"], strict=True,
                           allowed_statuses={"proxy_http_call": {2}})
    allowed.new_exchange().send_request_headers(req("/unknown"))


def test_strict_mode_reports_a_trap(wasm) -> None:
    emu = HttpEmulator(wasm("trap"), strict=True)
    assert emu.request(req("/")).forwarded_headers["x-trap-filter"] == "alive"
    with pytest.raises(StrictModeError, match="TRAP wasm `unreachable`"):
        emu.request(req("/trap"))


def test_grpc_calls_answered_failed_and_timed_out_by_the_clock(wasm) -> None:
    """The dispatcher side of gRPC callouts (what the host's gRPC calls are handed to):
    answers reach the host's event sink in order, at the next pump; a call past its
    timeout closes with 14 as the proxy closes it."""
    from types import SimpleNamespace

    emu = HttpEmulator(wasm("headers"))
    seen: list[tuple[str, object]] = []
    events = SimpleNamespace(
        on_initial_metadata=lambda md: seen.append(("initial", md)),
        on_message=lambda m: seen.append(("message", m)),
        on_trailing_metadata=lambda md: seen.append(("trailing", md)),
        on_close=lambda status, msg: seen.append(("close", (status, msg))))

    def request(timeout_ms: int | None) -> SimpleNamespace:
        return SimpleNamespace(cluster="grpc", service="pkg.Svc", method="Check",
                               metadata=[(b"x-md", b"1")], timeout_ms=timeout_ms)

    handle = emu.dispatcher.grpc_stream(request(1000), events)
    handle.send(b"req", end_stream=True)
    (call,) = emu.open_grpc_calls()
    assert (call.path, call.sent, call.half_closed) == ("/pkg.Svc/Check", [b"req"], True)
    emu.answer_grpc_call(b"resp", status=0)
    assert seen == [("initial", []), ("message", b"resp"), ("trailing", []), ("close", (0, b""))]
    assert emu.open_grpc_calls() == []

    seen.clear()
    emu.dispatcher.grpc_stream(request(1000), events)
    emu.answer_grpc_call(fail=True, status=7, status_message="denied")
    assert seen == [("close", (7, b"denied"))]

    seen.clear()
    emu.dispatcher.grpc_stream(request(500), events)
    emu.advance(0.499)
    assert seen == []
    emu.advance(0.001)
    assert seen == [("close", (14, b"upstream request timeout"))]

    seen.clear()
    cancelled = emu.dispatcher.grpc_stream(request(None), events)     # a stream: no deadline
    cancelled.cancel()
    emu.advance(3600)
    assert seen == [] and emu.open_grpc_calls() == []


def test_set_property_from_the_test_and_tick_period(wasm) -> None:
    emu = HttpEmulator(wasm("properties"))
    ex = emu.new_exchange()
    ex.send_request_headers(req("/"))
    ex.set_property("wasm_custom", "from-test")
    assert ex.get_property("wasm_custom") == b"from-test"
    assert HttpEmulator(wasm("tick")).tick_period_ms() == 10
    assert emu.tick_period_ms() == 0


def test_strict_mode_fails_on_an_unexpected_host_call(wasm) -> None:
    calls = {"proxy_add_header_map_value", "proxy_replace_header_map_value"}
    emu = HttpEmulator(wasm("headers"), strict=True, allowed_calls=calls)
    with pytest.raises(StrictModeError) as failed:
        emu.request(req("/"))
    assert "proxy_remove_header_map_value(map=request_headers, key='x-remove-me') = " \
           "unexpected host call (not in allowed_calls), returned OK" in str(failed.value)
    emu = HttpEmulator(wasm("headers"), strict=True,
                       allowed_calls=calls | {"proxy_remove_header_map_value"})
    assert emu.request(req("/")).status == 200


def test_live_trace_printer_prints_each_call_once_in_order(wasm) -> None:
    from wasmetool.testing.trace import Tracer, print_sink

    lines: list[str] = []
    tracer = Tracer(keep=0, sink=print_sink(lines.append))
    emu = HttpEmulator(wasm("headers"), name="hdr", trace=False, start=False)
    emu.host.observer = tracer                   # as `run --trace` hands it to the host
    emu.start()
    emu.request(req("/"))
    body = [ln for ln in lines if "#2]" in ln]
    assert body[0] == "[hdr #2] → proxy_on_context_create(parent_context_id=1)"
    assert "[hdr #2] → proxy_on_request_headers(num_headers=4, end_of_stream=true)" in body
    i = body.index("[hdr #2] ← proxy_on_request_headers = Continue")
    assert body[i - 1] == ("[hdr #2]     proxy_remove_header_map_value(map=request_headers, "
                           "key='x-remove-me') = OK")
    assert len(tracer.events) == 0                # keep=0: printed, not kept


def test_properties_every_stream_starts_with(wasm) -> None:
    emu = HttpEmulator(wasm("headers"), properties={"my.key": b"v", "other": "w"})
    for _ in range(2):
        ex = emu.new_exchange().send_request_headers(req("/"))
        assert ex.get_property("my.key") == b"v"
        assert ex.get_property(["other"]) == b"w"
        ex.set_property("other", "changed")               # this stream only
    assert emu.new_exchange().get_property("other") == b"w"


CLOCK_READER = """
(module
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32) (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get 0))) (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  ;; each request writes the three clocks to 1024 (proxy), 1032 (realtime), 1040 (monotonic)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $now (i32.const 1024)))
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 1032)))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 1040)))
    (i32.const 0)))
"""


def test_the_guest_reads_the_virtual_clock() -> None:
    import wasmtime

    def clocks(emu: HttpEmulator) -> list[int]:
        emu.request(req("/"))
        mem = emu.host.all_vms[0].mem
        return [int.from_bytes(mem.read(a, 8), "little") for a in (1024, 1032, 1040)]

    emu = HttpEmulator(wasmtime.wat2wasm(CLOCK_READER))
    first = clocks(emu)
    assert first == [emu.wall_ns, emu.wall_ns, emu.now_ns]
    assert first[0] == 1_767_225_600 * 10**9            # 2026-01-01T00:00:00Z
    emu.advance(1.5)
    assert clocks(emu) == [first[0] + 1_500_000_000, first[1] + 1_500_000_000,
                           first[2] + 1_500_000_000]
    (call,) = emu.host_calls("proxy_get_current_time_nanoseconds")[:1]
    assert call.outputs == {"time": first[0]}             # the trace shows the same value
    other = HttpEmulator(wasmtime.wat2wasm(CLOCK_READER), wall_clock_ns=5, trace=False)
    assert clocks(other)[0] == 5


def test_strict_mode_reports_memory_faults_of_wasi_calls_too(wasm) -> None:
    lenient = HttpEmulator(wasm("hostile_calls"))
    assert lenient.request(req("/")).status == 200
    strict = HttpEmulator(wasm("hostile_calls"), strict=True)
    with pytest.raises(StrictModeError) as failed:
        strict.request(req("/"))
    text = str(failed.value)
    assert "(memory fault)() = host call given memory outside the guest's" in text
    assert "INVALID_MEMORY_ACCESS" in text
