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
