"""Small hand-written WAT filters for the `wasmetool run` integration tests (ABI 0.2.1).

Each builder returns wasm bytes (compiled with wasmtime.wat2wasm). Strings live in data
segments at fixed addresses; the heap for proxy_on_memory_allocate starts at 32 KiB.
"""

from __future__ import annotations

import struct

import wasmtime

PRELUDE = r"""
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 32768))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7))
                               (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 1)))))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
"""


class Strings:
    """Places byte strings in data segments and remembers (address, length)."""

    def __init__(self, start: int = 1024) -> None:
        self.next = start
        self.segments: list[str] = []

    def add(self, data: bytes) -> tuple[int, int]:
        addr = self.next
        escaped = "".join(f"\\{b:02x}" for b in data)
        self.segments.append(f'  (data (i32.const {addr}) "{escaped}")')
        self.next = (addr + len(data) + 8) & ~7
        return addr, len(data)

    def wat(self) -> str:
        return "\n".join(self.segments)


def _compile(body: str) -> bytes:
    return wasmtime.wat2wasm(f"(module\n{body}\n)")


def header_filter(request: tuple[str, str] | None, response: tuple[str, str] | None,
                  log_message: str = "request seen", metric: str = "requests_seen") -> bytes:
    """Adds a request and/or response header, logs at info, counts requests in a metric."""
    s = Strings()
    req = [s.add(x.encode()) for x in request] if request else None
    resp = [s.add(x.encode()) for x in response] if response else None
    msg = s.add(log_message.encode())
    met = s.add(metric.encode())
    add_req = (f"(drop (call $add (i32.const 0) (i32.const {req[0][0]}) (i32.const {req[0][1]}) "
               f"(i32.const {req[1][0]}) (i32.const {req[1][1]})))" if req else "")
    add_resp = (f"(drop (call $add (i32.const 2) (i32.const {resp[0][0]}) (i32.const {resp[0][1]}) "
                f"(i32.const {resp[1][0]}) (i32.const {resp[1][1]})))" if resp else "")
    return _compile(f"""
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $incr (param i32 i64) (result i32)))
{PRELUDE}
{s.wat()}
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const {met[0]}) (i32.const {met[1]}) (i32.const 100)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    {add_req}
    (drop (call $log (i32.const 2) (i32.const {msg[0]}) (i32.const {msg[1]})))
    (drop (call $incr (i32.load (i32.const 100)) (i64.const 1)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    {add_resp}
    (i32.const 0))
""")


def config_filter() -> bytes:
    """Reads the plugin configuration in proxy_on_configure; adds it as `x-config`."""
    s = Strings()
    name = s.add(b"x-config")
    return _compile(f"""
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get (param i32 i32 i32 i32 i32) (result i32)))
{PRELUDE}
{s.wat()}
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (drop (call $get (i32.const 7) (i32.const 0) (local.get $size) (i32.const 200) (i32.const 204)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const {name[0]}) (i32.const {name[1]})
                     (i32.load (i32.const 200)) (i32.load (i32.const 204))))
    (i32.const 0))
""")


def serialize_pairs(pairs: list[tuple[bytes, bytes]]) -> bytes:
    out = struct.pack("<I", len(pairs))
    for key, value in pairs:
        out += struct.pack("<II", len(key), len(value))
    for key, value in pairs:
        out += key + b"\0" + value + b"\0"
    return out


def http_call_filter(cluster: str) -> bytes:
    """Pauses each request, calls GET /check on `cluster`, then adds `x-called: <status>`."""
    s = Strings()
    cl = s.add(cluster.encode())
    hdrs = s.add(serialize_pairs([(b":method", b"GET"), (b":path", b"/check"),
                                  (b":authority", cluster.encode())]))
    called = s.add(b"x-called")
    status = s.add(b":status")
    return _compile(f"""
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $getv (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $eff (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $cont (param i32) (result i32)))
{PRELUDE}
{s.wat()}
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (i32.store (i32.const 300) (local.get $ctx))
    (if (call $call (i32.const {cl[0]}) (i32.const {cl[1]}) (i32.const {hdrs[0]}) (i32.const {hdrs[1]})
                    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000)
                    (i32.const 304))
      (then (return (i32.const 0))))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
    (drop (call $getv (i32.const 6) (i32.const {status[0]}) (i32.const {status[1]})
                      (i32.const 310) (i32.const 314)))
    (drop (call $eff (i32.load (i32.const 300))))
    (drop (call $add (i32.const 0) (i32.const {called[0]}) (i32.const {called[1]})
                     (i32.load (i32.const 310)) (i32.load (i32.const 314))))
    (drop (call $cont (i32.const 0))))
""")


def network_filter(prefix: bytes = b"wasm:") -> bytes:
    """Prefixes every non-empty chunk the client sends with `prefix`; counts connections;
    logs "downstream closed" at info when the client connection ends."""
    s = Strings()
    pre = s.add(prefix) if prefix else (0, 0)
    met = s.add(b"tcp_connections")
    closed = s.add(b"downstream closed")
    return _compile(f"""
  (import "env" "proxy_set_buffer_bytes" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $incr (param i32 i64) (result i32)))
{PRELUDE}
{s.wat()}
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const {met[0]}) (i32.const {met[1]}) (i32.const 100)))
    (i32.const 1))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $incr (i32.load (i32.const 100)) (i64.const 1)))
    (i32.const 0))
  (func (export "proxy_on_downstream_data") (param i32) (param $size i32) (param i32) (result i32)
    (if (i32.and (local.get $size) (i32.const {1 if prefix else 0}))
      (then (drop (call $set (i32.const 2) (i32.const 0) (i32.const 0) (i32.const {pre[0]})
                             (i32.const {pre[1]})))))
    (i32.const 0))
  (func (export "proxy_on_upstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_connection_close") (param i32 i32)
    (drop (call $log (i32.const 2) (i32.const {closed[0]}) (i32.const {closed[1]}))))
  (func (export "proxy_on_upstream_connection_close") (param i32 i32))
""")


def root_id_filter() -> bytes:
    """Adds the plugin's root id (property plugin_root_id) as request header `x-root-id`."""
    s = Strings()
    prop = s.add(b"plugin_root_id")
    name = s.add(b"x-root-id")
    return _compile(f"""
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
{PRELUDE}
{s.wat()}
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $prop (i32.const {prop[0]}) (i32.const {prop[1]}) (i32.const 200) (i32.const 204)))
    (drop (call $add (i32.const 0) (i32.const {name[0]}) (i32.const {name[1]})
                     (i32.load (i32.const 200)) (i32.load (i32.const 204))))
    (i32.const 0))
""")
