"""In-process speed of the proxy-wasm host: no sockets, one core.

Prints:
* full HTTP request lifecycles per second (context create, request headers, response
  headers with one proxy_add_header_map_value, log, done, delete) through Host/HttpStream
  with a header-adding WAT filter — the fast path and the public-API fallback;
* µs per export call (proxy_on_request_headers that returns at once) and per host call
  (a guest loop calling proxy_get_header_map_size / proxy_add_header_map_value).

Usage: .venv/bin/python bench/host_inprocess.py [--requests N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import wasmtime

MODULE = """
(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $size (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 32768))
  (data (i32.const 16) "hello") (data (i32.const 32) "world")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (local $p i32) (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get 0))) (local.get $p))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 16) (i32.const 5) (i32.const 32) (i32.const 5)))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
  ;; benchmark helpers: n host calls from one export call
  (func (export "proxy_on_request_trailers") (param $ctx i32) (param $n i32) (result i32)
    (loop $l
      (drop (call $size (i32.const 0) (i32.const 8192)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (i32.const 0))
  (func (export "proxy_on_response_trailers") (param $ctx i32) (param $n i32) (result i32)
    (loop $l
      (drop (call $add (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 32) (i32.const 5)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (i32.const 0)))
"""

REQUEST = [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"localhost:8080"),
           (b":scheme", b"http"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
RESPONSE = [(b":status", b"200"), (b"content-length", b"2"), (b"content-type", b"text/plain")]


class NullCallbacks:
    __slots__ = ("headers",)

    def __init__(self) -> None:
        self.headers = None

    def forward_request_headers(self, headers, end_stream):  # noqa: ANN001, ANN201
        pass

    def forward_request_data(self, data, end_stream):  # noqa: ANN001, ANN201
        pass

    def forward_request_trailers(self, trailers):  # noqa: ANN001, ANN201
        pass

    def send_response_headers(self, headers, end_stream):  # noqa: ANN001, ANN201
        self.headers = headers

    def send_response_data(self, data, end_stream):  # noqa: ANN001, ANN201
        pass

    def send_response_trailers(self, trailers):  # noqa: ANN001, ANN201
        pass

    def send_local_reply(self, status, headers, body):  # noqa: ANN001, ANN201
        pass

    def reset_stream(self):  # noqa: ANN201
        pass


def run(fast: bool, requests: int) -> dict[str, float]:
    os.environ["WASMETOOL_HOST_FASTPATH"] = "1" if fast else "0"
    from wasmetool.host.config import PluginConfig, VmConfig
    from wasmetool.host.dispatch import ManualDispatcher
    from wasmetool.host.runtime import Host
    from wasmetool.host.stream_info import StreamInfo

    code = wasmtime.wat2wasm(MODULE)
    host = Host([PluginConfig(name="bench", vm=VmConfig(code=code))], ManualDispatcher())
    host.start()
    vm = host.all_vms[0]
    assert vm.raw is fast, "fast path not available" if fast else "fallback not selected"
    info = StreamInfo(("127.0.0.1", 40000), ("127.0.0.1", 8080), 1)
    cb = NullCallbacks()

    def one() -> None:
        s = host.new_http_stream(info, cb)
        s.decode_headers(list(REQUEST), True)
        s.encode_headers(list(RESPONSE), True)
        s.complete()

    for _ in range(min(2000, requests)):
        one()
    assert cb.headers is not None and (b"hello", b"world") in cb.headers
    t0 = time.perf_counter()
    for _ in range(requests):
        one()
    dt = time.perf_counter() - t0
    out = {"req_per_s": requests / dt, "us_per_req": dt / requests * 1e6}

    # export call cost: proxy_on_request_headers returns at once
    ex = vm.ex
    n = max(20000, requests)
    f = ex.proxy_on_request_headers
    t0 = time.perf_counter()
    for _ in range(n):
        f(1, 6, 1)
    out["us_per_export_call"] = (time.perf_counter() - t0) / n * 1e6

    # host call cost: many host calls from one export call (a stream context is needed)
    s = host.new_http_stream(info, cb)
    s.decode_headers(list(REQUEST), False)
    ctx = s.filters[0].ctx
    vm.cur = vm.eff = ctx
    k = 20000 if fast else 1000
    for name, fn in (("get_header_map_size", ex.proxy_on_request_trailers),
                     ("add_header_map_value", ex.proxy_on_response_trailers)):
        t0 = time.perf_counter()
        fn(ctx.id, k)
        out[f"us_per_host_call_{name}"] = (time.perf_counter() - t0) / k * 1e6
        s.req_headers[:] = list(REQUEST)
    vm.cur = vm.eff = None
    host.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50000)
    args = ap.parse_args()
    os.environ.setdefault("WASMETOOL_HOME", tempfile.mkdtemp(prefix="wasmetool-bench-"))
    fast = run(True, args.requests)
    slow = run(False, max(2000, args.requests // 10))
    print(f"{'':32} {'fast path':>12} {'public API':>12}")
    for key in fast:
        print(f"{key:32} {fast[key]:12.2f} {slow[key]:12.2f}")
    print(f"in-process throughput: {fast['req_per_s']:,.0f} req/s (fast path), "
          f"{slow['req_per_s']:,.0f} req/s (public API), ratio {fast['req_per_s'] / slow['req_per_s']:.1f}x")


if __name__ == "__main__":
    main()
