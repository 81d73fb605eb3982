;; Failures outside the request callbacks (ABI 0.2.1), chosen by the request's :path:
;;   /alloc-trap, /alloc-loop  the next proxy_on_memory_allocate traps / spins forever;
;;                             the request then asks for a header value, so the host
;;                             calls the allocator inside proxy_get_header_map_value
;;   /tick-trap, /tick-loop    once that request has completed (proxy_on_log), the next
;;                             proxy_on_tick (every 10 ms) traps / spins forever
;; Requests that pass get x-failing-filter: alive.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds"
    (func $set_tick (param i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $alloc_mode (mut i32) (i32.const 0))   ;; 1 trap, 2 loop
  (global $tick_mode (mut i32) (i32.const 0))    ;; 1 trap, 2 loop
  (global $next_tick_mode (mut i32) (i32.const 0))   ;; applied in proxy_on_log

  (data (i32.const 1024) ":path")              ;; 5
  (data (i32.const 1032) "/alloc-trap")        ;; 11
  (data (i32.const 1048) "/alloc-loop")        ;; 11
  (data (i32.const 1064) "/tick-trap")         ;; 10
  (data (i32.const 1080) "/tick-loop")         ;; 10
  (data (i32.const 1096) "x-failing-filter")   ;; 16
  (data (i32.const 1116) "alive")              ;; 5
  (data (i32.const 1124) "user-agent")         ;; 10

  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (if (i32.eq (global.get $alloc_mode) (i32.const 1)) (then unreachable))
    (if (i32.eq (global.get $alloc_mode) (i32.const 2)) (then (loop $forever (br $forever))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7))
                               (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
        (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (local.get $p))
  (func $starts_with (param $ptr i32) (param $size i32) (param $lit i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $size) (local.get $len)) (then (return (i32.const 0))))
    (block $out (loop $l
      (br_if $out (i32.ge_u (local.get $i) (local.get $len)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                  (i32.load8_u (i32.add (local.get $lit) (local.get $i))))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.eqz (call $set_tick (i32.const 10))))

  (func (export "proxy_on_tick") (param $root i32)
    (if (i32.eq (global.get $tick_mode) (i32.const 1)) (then unreachable))
    (if (i32.eq (global.get $tick_mode) (i32.const 2)) (then (loop $forever (br $forever)))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $ptr i32) (local $size i32)
    (if (i32.eqz (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
      (then
        (local.set $ptr (i32.load (i32.const 256)))
        (local.set $size (i32.load (i32.const 260)))
        (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1032) (i32.const 11))
          (then (global.set $alloc_mode (i32.const 1))))
        (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1048) (i32.const 11))
          (then (global.set $alloc_mode (i32.const 2))))
        (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1064) (i32.const 10))
          (then (global.set $next_tick_mode (i32.const 1))))
        (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1080) (i32.const 10))
          (then (global.set $next_tick_mode (i32.const 2))))))
    ;; a host call that returns data, so the host calls the allocator
    (drop (call $get_hdr (i32.const 0) (i32.const 1124) (i32.const 10) (i32.const 256) (i32.const 260)))
    (drop (call $add (i32.const 0) (i32.const 1096) (i32.const 16) (i32.const 1116) (i32.const 5)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (if (global.get $next_tick_mode) (then (global.set $tick_mode (global.get $next_tick_mode)))))
  (func (export "proxy_on_delete") (param i32))
)
