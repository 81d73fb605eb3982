;; Tick-resumed requests (ABI 0.2.1). On configure the root sets a 10 ms tick. Every
;; request is paused in on_request_headers and its context id queued; proxy_on_tick makes
;; each queued context effective, adds x-resumed-by: tick and calls
;; proxy_continue_stream(HTTP_REQUEST).
(module
  (import "env" "proxy_set_tick_period_milliseconds"
    (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_set_effective_context"
    (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream"
    (func $continue (param i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $pending (mut i32) (i32.const 0))   ;; number of queued context ids at 8192

  (data (i32.const 1024) "x-resumed-by")   ;; 12
  (data (i32.const 1040) "tick")           ;; 4

  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7))
                               (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
        (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.eqz (call $set_tick (i32.const 10))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.ge_u (global.get $pending) (i32.const 1024)) (then (return (i32.const 0))))
    (i32.store (i32.add (i32.const 8192) (i32.shl (global.get $pending) (i32.const 2))) (local.get $ctx))
    (global.set $pending (i32.add (global.get $pending) (i32.const 1)))
    (i32.const 1))

  (func (export "proxy_on_tick") (param $root i32)
    (local $i i32)
    (block $out (loop $l
      (br_if $out (i32.ge_u (local.get $i) (global.get $pending)))
      (if (i32.eqz (call $set_effective (i32.load (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 2))))))
        (then
          (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 12) (i32.const 1040) (i32.const 4)))
          (drop (call $continue (i32.const 0)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (global.set $pending (i32.const 0)))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
