;; upper_body.wat: a body-rewriting proxy-wasm filter (ABI 0.2.1) for bench/run_vs_envoy.py.
;; Response headers: content-length is removed (a rewritten body may change size), as body
;; rewriting filters do. Response body: buffered until end of stream
;; (StopIterationAndBuffer), then read with proxy_get_buffer_bytes, upper-cased in guest
;; memory and written back whole with proxy_set_buffer_bytes.
(module
  (import "env" "proxy_remove_header_map_value"
    (func $remove (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes"
    (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "content-length")   ;; 14 bytes
  ;; 32: the data pointer proxy_get_buffer_bytes returns, 36: its size

  (func (export "proxy_abi_version_0_2_1"))
  ;; a bump allocator that starts over at 4096 for every body: one body at a time
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7))
                               (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
        (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (local.get $p))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $remove (i32.const 2) (i32.const 16) (i32.const 14)))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32)
    (result i32)
    (local $p i32) (local $end i32) (local $c i32)
    (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))   ;; StopIterationAndBuffer
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (global.set $heap (i32.const 4096))
    (if (call $get_buf (i32.const 1) (i32.const 0) (local.get $size) (i32.const 32)
                       (i32.const 36))
      (then (return (i32.const 0))))
    (local.set $p (i32.load (i32.const 32)))
    (local.set $end (i32.add (local.get $p) (i32.load (i32.const 36))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $c (i32.load8_u (local.get $p)))
      (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))
        (then (i32.store8 (local.get $p) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    (drop (call $set_buf (i32.const 1) (i32.const 0) (local.get $size)
                         (i32.load (i32.const 32)) (i32.load (i32.const 36))))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
