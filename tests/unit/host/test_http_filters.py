"""HTTP filter manager through the in-process emulator: header maps, local replies, bodies."""

from __future__ import annotations

import pytest
from wat import ADD_HEADER, build

from wasmetool.host import abi, pairs
from wasmetool.testing import HttpEmulator

REQ = {":method": "GET", ":path": "/x?q=1", ":authority": "example.com", ":scheme": "http",
       "x-a": "old", "x-b": "gone", "x-c": "copy-me"}

HEADER_OPS = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $st i32)
    (drop (call $replace (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 24) (i32.const 1)))
    (drop (call $remove (i32.const 0) (i32.const 32) (i32.const 3)))
    (if (i32.eqz (call $get_value (i32.const 0) (i32.const 40) (i32.const 3) (i32.const 8192) (i32.const 8196)))
      (then (drop (call $add (i32.const 0) (i32.const 48) (i32.const 8)
                        (i32.load (i32.const 8192)) (i32.load (i32.const 8196))))))
    (local.set $st (call $get_value (i32.const 0) (i32.const 64) (i32.const 9) (i32.const 8192) (i32.const 8196)))
    (i32.store8 (i32.const 8204) (i32.add (i32.const 48) (local.get $st)))
    (drop (call $add (i32.const 0) (i32.const 80) (i32.const 16) (i32.const 8204) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $replace (i32.const 2) (i32.const 96) (i32.const 6) (i32.const 112) (i32.const 7)))
    (i32.const 0))
""", uses=("replace", "remove", "get_value", "add"),
    data={16: "X-A", 24: "1", 32: "x-b", 40: "x-c", 48: "x-c-copy", 64: "x-missing",
          80: "x-missing-status", 96: "server", 112: "wasmtst"})


def test_add_header_both_directions() -> None:
    with HttpEmulator(ADD_HEADER) as emu:
        ex = emu.request(REQ)
        assert ex.forwarded_headers["hello"] == "world"
        assert ex.response_headers["hello"] == "world"
        assert ex.status == 200


def test_header_map_operations_follow_envoy() -> None:
    with HttpEmulator(HEADER_OPS) as emu:
        ex = emu.request(REQ, response_headers={":status": "200", "server": "up"})
        h = ex.forwarded_headers
        assert h.all("x-a") == ["1"]                  # replace, key lower-cased
        assert "x-b" not in h                          # removed
        assert h["x-c-copy"] == "copy-me"              # get value + add
        assert h["x-missing-status"] == str(abi.NOT_FOUND)   # v0.2.x: missing key → NOT_FOUND
        assert ex.response_headers.all("server") == ["wasmtst"]


LOCAL_REPLY_HEADERS = pairs.encode([(b"X-Reason", b"blocked")])
LOCAL = build(f"""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $local (i32.const 403) (i32.const 16) (i32.const 6) (i32.const 32) (i32.const 4)
                (i32.const 64) (i32.const {len(LOCAL_REPLY_HEADERS)}) (i32.const -1)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 200) (i32.const 6) (i32.const 208) (i32.const 3)))
    (i32.const 0))
""", uses=("local", "add"), data={16: "denied", 32: "nope", 64: LOCAL_REPLY_HEADERS,
                                  200: "x-seen", 208: "yes"})


def test_local_reply_stops_request_and_passes_own_encode_path() -> None:
    with HttpEmulator(LOCAL) as emu:
        ex = emu.request(REQ)
        assert ex.forwarded_headers is None            # never reached the upstream
        status, headers, body = ex.local_reply
        assert (status, body) == (403, b"nope")
        assert headers["x-reason"] == "blocked"
        assert headers["content-length"] == "4"
        assert headers["x-seen"] == "yes"              # the response went through the filter
        assert ex.info.response_code_details == "denied"


def test_local_reply_in_chain_skips_later_filters() -> None:
    from wasmetool.host.config import PluginConfig, VmConfig
    plugins = [PluginConfig(name="add", vm=VmConfig(code=ADD_HEADER, vm_id="a")),
               PluginConfig(name="deny", vm=VmConfig(code=LOCAL, vm_id="b")),
               PluginConfig(name="add2", vm=VmConfig(code=ADD_HEADER, vm_id="c"))]
    with HttpEmulator(plugins=plugins) as emu:
        ex = emu.request(REQ)
        status, headers, _ = ex.local_reply
        assert status == 403
        assert headers.all("hello") == ["world"]       # only the filter before the denier


BODY = build("""
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 8)))
    (drop (call $get_buf (i32.const 0) (i32.const 0) (local.get $size) (i32.const 8192) (i32.const 8196)))
    (drop (call $set_buf (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 32) (i32.const 4)))
    (drop (call $set_buf (i32.const 0) (i32.add (local.get $size) (i32.const 4)) (i32.const 0) (i32.const 48) (i32.const 4)))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
    (drop (call $set_buf (i32.const 1) (i32.const 0) (local.get $size) (i32.const 64) (i32.const 8)))
    (i32.const 0))
""", uses=("log", "get_buf", "set_buf"),
    data={16: "buffered", 32: "pre-", 48: "-end", 64: "replaced"})


def test_body_buffering_and_rewrite() -> None:
    with HttpEmulator(BODY) as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ)
        ex.send_request_body("abc", end_stream=False)
        assert ex.forwarded_body == b""                # paused: buffered
        ex.send_request_body("def", end_stream=True)
        assert ex.forwarded_body == b"pre-abcdef-end"
        assert ex.request_end
        ex.send_response_headers_upstream({":status": "200"})
        ex.send_response_body_upstream("x" * 10, end_stream=False)
        ex.send_response_body_upstream("y" * 10, end_stream=True)
        assert ex.response_body == b"replaced"
        ex.complete()
        assert emu.log_messages(abi.INFO) == ["buffered"]


PAUSE_HEADERS = build("""
  (global $paused (mut i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (global.set $paused (local.get $ctx))
    (i32.const 1))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 4)))
    (i32.const 0))
  (func (export "proxy_on_tick") (param $root i32)
    (if (global.get $paused)
      (then (drop (call $eff (global.get $paused))) (drop (call $cont (i32.const 0)))
            (global.set $paused (i32.const 0)))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $tick (i32.const 100))) (i32.const 1))
""", uses=("log", "eff", "cont", "tick"), data={16: "body"})


def test_stop_iteration_from_headers_holds_body_until_tick_resumes() -> None:
    with HttpEmulator(PAUSE_HEADERS) as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ)
        ex.send_request_body("payload", end_stream=True)
        assert ex.forwarded_headers is None and ex.forwarded_body == b""
        assert emu.log_messages() == []                # body not given to the stopped filter
        emu.advance(0.1)
        assert ex.forwarded_headers is not None
        assert ex.forwarded_body == b"payload" and ex.request_end
        assert emu.log_messages() == ["body"]


@pytest.mark.parametrize("fast", ["1", "ctypes", "0"])
def test_fastpath_and_public_api_agree(fast: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C accelerator (default), the ctypes raw path and the public API give the same
    results; the public API run is the reference."""
    from wasmetool.host import fastpath
    monkeypatch.setenv("WASMETOOL_HOST_FASTPATH", fast)
    assert fastpath.fastpath_mode() == {"1": "c", "ctypes": "ctypes", "0": "public"}[fast]
    results = []
    for code in (HEADER_OPS, LOCAL, BODY):
        with HttpEmulator(code) as emu:
            assert emu.host.all_vms[0].raw is (fast != "0" and fastpath._RAW_OK)
            ex = emu.request(REQ, body="abc", response_body="0123456789")
            results.append((list(ex.forwarded_headers or []), ex.forwarded_body, ex.local_reply,
                            ex.status, ex.body, emu.log_messages()))
    expected = _reference_results()
    assert results == expected


_REFERENCE: list = []


def _reference_results() -> list:
    """The same run through the other path (computed once, public API)."""
    if not _REFERENCE:
        import os
        old = os.environ.get("WASMETOOL_HOST_FASTPATH")
        os.environ["WASMETOOL_HOST_FASTPATH"] = "0"
        try:
            for code in (HEADER_OPS, LOCAL, BODY):
                with HttpEmulator(code) as emu:
                    ex = emu.request(REQ, body="abc", response_body="0123456789")
                    _REFERENCE.append((list(ex.forwarded_headers or []), ex.forwarded_body,
                                       ex.local_reply, ex.status, ex.body, emu.log_messages()))
        finally:
            if old is None:
                del os.environ["WASMETOOL_HOST_FASTPATH"]
            else:
                os.environ["WASMETOOL_HOST_FASTPATH"] = old
    return _REFERENCE


CLEAR_RESPONSE = build("""
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $set_pairs (i32.const 2) (i32.const 16) (i32.const 1)))
    (i32.const 0))
""", uses=("set_pairs",), data={16: "\x07"})


def test_response_without_status_becomes_502_as_envoys_codec() -> None:
    with HttpEmulator(CLEAR_RESPONSE) as emu:
        ex = emu.request(REQ, response_body="upstream body")
        assert ex.local_reply == (502, [(b"content-length", b"32"), (b"content-type", b"text/plain")],
                                  b"missing required header: :status")
        assert ex.response_body == b""


def test_response_code_details_via_upstream() -> None:
    with HttpEmulator(ADD_HEADER) as emu:
        ex = emu.request(REQ)
        assert ex.info.response_code_details == "via_upstream"


TRAILERS = build("""
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (local.get $eos)
      (then (drop (call $add (i32.const 1) (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 3)))))
    (i32.const 0))
  (func (export "proxy_on_response_trailers") (param $ctx i32) (param $n i32) (result i32)
    (drop (call $add (i32.const 3) (i32.const 48) (i32.const 6) (i32.const 32) (i32.const 3)))
    (i32.const 0))
""", uses=("add",), data={16: "x-trail", 32: "yes", 48: "x-resp"})


def test_trailers_added_from_last_body_callback_and_response_trailers() -> None:
    with HttpEmulator(TRAILERS) as emu:
        ex = emu.request(REQ, body="abc", response_body="r", response_trailers={"grpc-status": "0"})
        assert ex.forwarded_body == b"abc"
        assert ex.forwarded_trailers["x-trail"] == "yes"
        assert ("request_data", 3, False) in ex.events and ex.events.count(("request_trailers",)) == 1
        assert ex.response_trailers.all("x-resp") == ["yes"]
        assert ex.response_trailers["grpc-status"] == "0"


CLOSE = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $close_stream (i32.const 0))) (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 3))))
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 6))))
  (func (export "proxy_on_done") (param i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 48) (i32.const 4))) (i32.const 1))
""", uses=("close_stream", "log"), data={16: "log", 32: "delete", 48: "done"})


def test_close_stream_resets_and_runs_log_done_delete() -> None:
    with HttpEmulator(CLOSE) as emu:
        ex = emu.request(REQ, complete=False)
        assert ex.was_reset and ex.forwarded_headers is None
        assert emu.log_messages() == ["log", "done", "delete"]
        ex.complete()                                   # idempotent
        assert emu.log_messages() == ["log", "done", "delete"]


def test_local_reply_to_grpc_request_is_trailers_only_grpc() -> None:
    # Envoy 1.40 answers the same module and request with exactly these headers
    with HttpEmulator(LOCAL) as emu:
        ex = emu.request({**REQ, "content-type": "application/grpc"})
        status, headers, body = ex.local_reply
        assert (status, body) == (200, b"")
        assert list(headers) == [(b"x-reason", b"blocked"), (b"content-type", b"application/grpc"),
                                 (b"grpc-status", b"7"), (b"grpc-message", b"nope"),
                                 (b"x-seen", b"yes")]


RESP_LOCAL_HEADERS = pairs.encode([(b"x-reason", b"late")])
RESP_LOCAL = build(f"""
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $local (i32.const 418) (i32.const 16) (i32.const 6) (i32.const 32) (i32.const 4)
                (i32.const 64) (i32.const {len(RESP_LOCAL_HEADERS)}) (i32.const -1)))
    (i32.const 0))
""", uses=("local",), data={16: "teapot", 32: "late", 64: RESP_LOCAL_HEADERS})


def test_local_reply_from_response_path_is_sent_directly() -> None:
    # chain: add, reply-in-response, add → Envoy 1.40 answers 418 with none of the adds
    from wasmetool.host.config import PluginConfig, VmConfig
    plugins = [PluginConfig(name="a", vm=VmConfig(code=ADD_HEADER, vm_id="a")),
               PluginConfig(name="b", vm=VmConfig(code=RESP_LOCAL, vm_id="b")),
               PluginConfig(name="c", vm=VmConfig(code=ADD_HEADER, vm_id="c"))]
    with HttpEmulator(plugins=plugins) as emu:
        ex = emu.request(REQ, response_body="upstream")
        assert ex.local_reply == (418, [(b"x-reason", b"late"), (b"content-length", b"4"),
                                        (b"content-type", b"text/plain")], b"late")
        assert ex.response_headers is None and ex.response_body == b""
        assert ex.forwarded_headers.all("hello") == ["world", "world"]


def test_buffering_past_the_limit_answers_413_through_the_filter() -> None:
    from wasmetool.host.config import Limits
    with HttpEmulator(BODY, limits=Limits(buffer_limit_bytes=1000)) as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ)
        for _ in range(3):
            ex.send_request_body("a" * 400, end_stream=False)
        status, headers, body = ex.local_reply
        assert (status, body) == (413, b"replaced")    # "Payload Too Large", rewritten by
        assert headers[0] == (b"connection", b"close")  # the filter's response callback
        assert ex.forwarded_body == b""
        assert ex.info.response_code_details == "request_payload_too_large"


REPLACE_ORDER = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $replace (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 24) (i32.const 1)))
    (drop (call $replace (i32.const 0) (i32.const 32) (i32.const 5) (i32.const 40) (i32.const 4)))
    (drop (call $add (i32.const 0) (i32.const 48) (i32.const 3) (i32.const 24) (i32.const 1)))
    (i32.const 0))
""", uses=("replace", "add"), data={16: "x-a", 24: "1", 32: ":path", 40: "/new", 48: "X-C"})


def test_replace_and_add_order_as_envoy_header_map() -> None:
    # same order as Envoy 1.40 (minus the x-forwarded-proto/x-request-id its HCM adds)
    with HttpEmulator(REPLACE_ORDER) as emu:
        ex = emu.request([(":authority", "h"), (":path", "/p"), (":method", "GET"),
                          ("x-a", "one"), ("x-b", "b"), ("x-a", "two"), ("x-c", "c0")])
        assert list(ex.forwarded_headers) == [
            (b":authority", b"h"), (b":method", b"GET"), (b":path", b"/new"), (b"x-b", b"b"),
            (b"x-c", b"c0"), (b"x-a", b"1"), (b"x-c", b"1")]
