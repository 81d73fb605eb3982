"""WAT building blocks for host tests: a bump allocator and small filters."""

from __future__ import annotations

import wasmtime

PRELUDE = """
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 32768))
  (func (export "proxy_abi_version_0_2_1"))
  (func $alloc (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7))
                               (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.div_u (local.get $n) (i32.const 65536)) (i32.const 1))))))
    (local.get $p))
"""

DEFAULT_CALLBACKS = {
    "proxy_on_vm_start": '(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))',
    "proxy_on_configure": '(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))',
    "proxy_on_context_create": '(func (export "proxy_on_context_create") (param i32 i32))',
    "proxy_on_done": '(func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))',
}


def module(body: str, imports: str = "", data: str = "", prelude: str = PRELUDE) -> bytes:
    """A module with the prelude, default lifecycle callbacks (unless body defines them)."""
    parts = ["(module", imports, prelude, data]
    for name, text in DEFAULT_CALLBACKS.items():
        if f'"{name}"' not in body:
            parts.append(text)
    parts.append(body)
    parts.append(")")
    return wasmtime.wat2wasm("\n".join(parts))


ADD_HEADER = module(
    imports='(import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))',
    data='(data (i32.const 16) "hello") (data (i32.const 32) "world")',
    body="""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 32) (i32.const 5)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 16) (i32.const 5) (i32.const 32) (i32.const 5)))
    (i32.const 0))
""")


IMPORTS = {
    "log": '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))',
    "add": '(import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))',
    "replace": '(import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))',
    "remove": '(import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))',
    "get_value": '(import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))',
    "get_pairs": '(import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))',
    "get_buf": '(import "env" "proxy_get_buffer_bytes" (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))',
    "set_buf": '(import "env" "proxy_set_buffer_bytes" (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))',
    "local": '(import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))',
    "http_call": '(import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))',
    "eff": '(import "env" "proxy_set_effective_context" (func $eff (param i32) (result i32)))',
    "cont": '(import "env" "proxy_continue_stream" (func $cont (param i32) (result i32)))',
    "tick": '(import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))',
    "define_metric": '(import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))',
    "inc_metric": '(import "env" "proxy_increment_metric" (func $inc_metric (param i32 i64) (result i32)))',
    "record_metric": '(import "env" "proxy_record_metric" (func $record_metric (param i32 i64) (result i32)))',
    "get_prop": '(import "env" "proxy_get_property" (func $get_prop (param i32 i32 i32 i32) (result i32)))',
    "set_prop": '(import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))',
    "set_shared": '(import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))',
    "get_shared": '(import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))',
    "reg_q": '(import "env" "proxy_register_shared_queue" (func $reg_q (param i32 i32 i32) (result i32)))',
    "resolve_q": '(import "env" "proxy_resolve_shared_queue" (func $resolve_q (param i32 i32 i32 i32 i32) (result i32)))',
    "enq": '(import "env" "proxy_enqueue_shared_queue" (func $enq (param i32 i32 i32) (result i32)))',
    "deq": '(import "env" "proxy_dequeue_shared_queue" (func $deq (param i32 i32 i32) (result i32)))',
    "fd_write": '(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))',
    "environ_sizes": '(import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes (param i32 i32) (result i32)))',
    "environ_get": '(import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))',
    "get_status": '(import "env" "proxy_get_status" (func $get_status (param i32 i32 i32) (result i32)))',
    "grpc_call": '(import "env" "proxy_grpc_call" (func $grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))',
    "grpc_send": '(import "env" "proxy_grpc_send" (func $grpc_send (param i32 i32 i32 i32) (result i32)))',
    "grpc_cancel": '(import "env" "proxy_grpc_cancel" (func $grpc_cancel (param i32) (result i32)))',
    "grpc_close": '(import "env" "proxy_grpc_close" (func $grpc_close (param i32) (result i32)))',
    "get_cfg": '(import "env" "proxy_get_configuration" (func $get_cfg (param i32 i32) (result i32)))',
    "wasi_stubs": """
      (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $set_flags (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_filestat_get" (func $filestat (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))""",
    "foreign": '(import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))',
    "set_pairs": '(import "env" "proxy_set_header_map_pairs" (func $set_pairs (param i32 i32 i32) (result i32)))',
    "get_size": '(import "env" "proxy_get_header_map_size" (func $get_size (param i32 i32) (result i32)))',
    "close_stream": '(import "env" "proxy_close_stream" (func $close_stream (param i32) (result i32)))',
}


def wat_bytes(data: bytes) -> str:
    return '"' + "".join(f"\\{b:02x}" for b in data) + '"'


def build(body: str, uses: tuple[str, ...] = (), data: dict[int, bytes | str] | None = None,
          version: str = "0_2_1") -> bytes:
    imports = "\n".join(IMPORTS[u] for u in uses)
    segs = []
    for off, val in (data or {}).items():
        b = val.encode() if isinstance(val, str) else val
        segs.append(f"(data (i32.const {off}) {wat_bytes(b)})")
    prelude = PRELUDE.replace("proxy_abi_version_0_2_1", f"proxy_abi_version_{version}")
    return module(body, imports=imports, data="\n".join(segs), prelude=prelude)
