"""Properties a filter reads in on_log, with Envoy 1.40's answers (see the conformance
case properties_in_on_log_more): empty names, one endpoint, an empty trailer map, empty
metadata, and SERIALIZATION_FAILURE for the whole filter state."""

from __future__ import annotations

from wat import build

from wasmetool.host.stream_info import StreamInfo
from wasmetool.testing import HttpEmulator

REQ = {":method": "GET", ":path": "/", ":authority": "example.com"}
PATHS = ["xds\0route_name", "xds\0filter_chain_name", "upstream\0num_endpoints",
         "response\0trailers", "upstream\0transport_failure_reason", "metadata",
         "filter_state", "response\0headers_bytes"]

# on_log logs each property: its value as it is, or "status:<n>" when the call failed
_CALLS = "\n".join(
    f"(call $report (i32.const {1024 + 64 * i}) (i32.const {len(p)}))" for i, p in enumerate(PATHS))
LOG_PROPS = build(f"""
  (func $report (param $path i32) (param $len i32)
    (local $st i32)
    (local.set $st (call $get_prop (local.get $path) (local.get $len) (i32.const 8192) (i32.const 8196)))
    (if (local.get $st)
      (then
        (i32.store8 (i32.const 23) (i32.add (i32.const 48) (local.get $st)))
        (drop (call $log (i32.const 2) (i32.const 16) (i32.const 8))))
      (else
        (drop (call $log (i32.const 2) (i32.load (i32.const 8192)) (i32.load (i32.const 8196)))))))
  (func (export "proxy_on_log") (param i32) {_CALLS})
""", uses=("get_prop", "log"), data={16: "status:?", **{1024 + 64 * i: p for i, p in enumerate(PATHS)}})


def _on_log(info: StreamInfo | None = None, trailers: dict[str, str] | None = None) -> list[str]:
    with HttpEmulator(LOG_PROPS) as emu:
        ex = emu.new_exchange(info)
        ex.send_request_headers(REQ, end_stream=True)
        ex.send_response_headers_upstream({":status": "404", "x-a": "b"}, end_stream=not trailers)
        if trailers:
            ex.send_response_trailers_upstream(trailers)
        emu.logs.clear()
        ex.complete()
        return emu.log_messages()


def test_on_log_properties_answer_as_envoy() -> None:
    info = StreamInfo()
    info.cluster_name = "upstream"             # the request was routed to the upstream
    got = dict(zip(PATHS, _on_log(info), strict=True))
    assert got == {
        "xds\0route_name": "", "xds\0filter_chain_name": "",
        "upstream\0num_endpoints": "\x01" + "\0" * 7,           # int64 1
        "response\0trailers": "\0" * 4,                         # an empty map
        "upstream\0transport_failure_reason": "", "metadata": "",
        "filter_state": "status:3",                             # SERIALIZATION_FAILURE
        "response\0headers_bytes": "\x0e" + "\0" * 7,           # :status 404 x-a b
    }


def test_upstream_properties_need_a_routed_request_and_trailers_are_a_map() -> None:
    got = dict(zip(PATHS, _on_log(trailers={"grpc-status": "0"}), strict=True))
    assert got["upstream\0num_endpoints"] == "status:1"          # never routed: NOT_FOUND
    assert got["upstream\0transport_failure_reason"] == "status:1"
    assert got["response\0trailers"].startswith("\x01\0\0\0")   # one pair
