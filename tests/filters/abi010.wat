;; An ABI 0.1.0 module: 2-parameter header callbacks, proxy_get_configuration (0.1.0
;; only) and proxy_continue_request (0.1.0 only). on_configure reads the plugin
;; configuration and sets a 10 ms tick. Each request gets x-abi: 0.1.0, x-config: <config>
;; and x-missing-status (the status of a get on a missing header: OK on 0.1.0), then is
;; paused; proxy_on_tick adds x-resumed: tick and resumes it with proxy_continue_request.
;; Responses get x-abi-response: 0.1.0. Requests also get x-clear-route-cache (the status
;; of proxy_clear_route_cache, 0.1.0 only).
(module
  (import "env" "proxy_get_configuration"
    (func $get_config (param i32 i32) (result i32)))
  (import "env" "proxy_continue_request"
    (func $continue_request (result i32)))
  (import "env" "proxy_clear_route_cache"
    (func $clear_route_cache (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds"
    (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_set_effective_context"
    (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $cfg_ptr (mut i32) (i32.const 0))
  (global $cfg_len (mut i32) (i32.const 0))
  (global $pending (mut i32) (i32.const 0))   ;; queued context ids at 8192

  (data (i32.const 1024) "x-abi")              ;; 5
  (data (i32.const 1032) "0.1.0")              ;; 5
  (data (i32.const 1040) "x-config")           ;; 8
  (data (i32.const 1056) "x-missing")          ;; 9
  (data (i32.const 1072) "x-missing-status")   ;; 16
  (data (i32.const 1092) "x-resumed")          ;; 9
  (data (i32.const 1104) "tick")               ;; 4
  (data (i32.const 1112) "x-abi-response")     ;; 14
  (data (i32.const 1128) "x-clear-route-cache") ;; 19

  (func (export "proxy_abi_version_0_1_0"))
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
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (i32.eqz (call $get_config (i32.const 256) (i32.const 260)))
      (then (global.set $cfg_ptr (i32.load (i32.const 256)))
            (global.set $cfg_len (i32.load (i32.const 260)))))
    (i32.eqz (call $set_tick (i32.const 10))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1032) (i32.const 5)))
    (drop (call $add (i32.const 0) (i32.const 1040) (i32.const 8) (global.get $cfg_ptr) (global.get $cfg_len)))
    (i32.store8 (i32.const 320) (i32.add (i32.const 48)
      (call $get_hdr (i32.const 0) (i32.const 1056) (i32.const 9) (i32.const 264) (i32.const 268))))
    (drop (call $add (i32.const 0) (i32.const 1072) (i32.const 16) (i32.const 320) (i32.const 1)))
    (i32.store8 (i32.const 321) (i32.add (i32.const 48) (call $clear_route_cache)))
    (drop (call $add (i32.const 0) (i32.const 1128) (i32.const 19) (i32.const 321) (i32.const 1)))
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
          (drop (call $add (i32.const 0) (i32.const 1092) (i32.const 9) (i32.const 1104) (i32.const 4)))
          (drop (call $continue_request))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (global.set $pending (i32.const 0)))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 1112) (i32.const 14) (i32.const 1032) (i32.const 5)))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
