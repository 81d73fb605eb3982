;; Stream control (ABI 0.2.1), chosen by the request's :path:
;;   /close-request      proxy_close_stream(HTTP_REQUEST) in on_request_headers
;;   /close-response     proxy_close_stream(HTTP_RESPONSE) in on_response_headers
;;   /reply-in-response  proxy_send_local_response(418, "teapot from response\n") from
;;                       on_response_headers
;;   /pause-response     Pause in on_response_headers; proxy_on_tick (10 ms) adds
;;                       x-response-resumed: tick and proxy_continue_stream(HTTP_RESPONSE)
;; The path's kind is kept per context (8192 + ctx * 4): 1 close-request, 2 close-response,
;; 3 reply-in-response, 4 pause-response.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_close_stream"
    (func $close (param i32) (result i32)))
  (import "env" "proxy_continue_stream"
    (func $continue (param i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds"
    (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_set_effective_context"
    (func $set_effective (param i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $pending (mut i32) (i32.const 0))   ;; paused response contexts at 12288

  (data (i32.const 1024) ":path")                  ;; 5
  (data (i32.const 1032) "/close-request")         ;; 14
  (data (i32.const 1048) "/close-response")        ;; 15
  (data (i32.const 1064) "/reply-in-response")     ;; 18
  (data (i32.const 1088) "/pause-response")        ;; 15
  (data (i32.const 1104) "teapot from response\n") ;; 21
  (data (i32.const 1128) "x-response-resumed")     ;; 18
  (data (i32.const 1148) "tick")                   ;; 4

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
  (func $slot (param $ctx i32) (result i32)
    (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $ctx) (i32.const 1023)) (i32.const 2))))
  (func (export "proxy_on_context_create") (param $ctx i32) (param i32)
    (i32.store (call $slot (local.get $ctx)) (i32.const 0)))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.eqz (call $set_tick (i32.const 10))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $ptr i32) (local $size i32) (local $kind i32)
    (if (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260))
      (then (return (i32.const 0))))
    (local.set $ptr (i32.load (i32.const 256)))
    (local.set $size (i32.load (i32.const 260)))
    (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1032) (i32.const 14))
      (then (local.set $kind (i32.const 1))))
    (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1048) (i32.const 15))
      (then (local.set $kind (i32.const 2))))
    (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1064) (i32.const 18))
      (then (local.set $kind (i32.const 3))))
    (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1088) (i32.const 15))
      (then (local.set $kind (i32.const 4))))
    (i32.store (call $slot (local.get $ctx)) (local.get $kind))
    (if (i32.eq (local.get $kind) (i32.const 1))
      (then (drop (call $close (i32.const 0))) (return (i32.const 1))))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $kind i32)
    (local.set $kind (i32.load (call $slot (local.get $ctx))))
    (if (i32.eq (local.get $kind) (i32.const 2))
      (then (drop (call $close (i32.const 1))) (return (i32.const 1))))
    (if (i32.eq (local.get $kind) (i32.const 3))
      (then
        (drop (call $local (i32.const 418) (i32.const 0) (i32.const 0) (i32.const 1104) (i32.const 21)
                           (i32.const 0) (i32.const 0) (i32.const -1)))
        (return (i32.const 1))))
    (if (i32.eq (local.get $kind) (i32.const 4))
      (then
        (if (i32.lt_u (global.get $pending) (i32.const 1024))
          (then
            (i32.store (i32.add (i32.const 12288) (i32.shl (global.get $pending) (i32.const 2))) (local.get $ctx))
            (global.set $pending (i32.add (global.get $pending) (i32.const 1)))
            (return (i32.const 1))))))
    (i32.const 0))

  (func (export "proxy_on_tick") (param $root i32)
    (local $i i32)
    (block $out (loop $l
      (br_if $out (i32.ge_u (local.get $i) (global.get $pending)))
      (if (i32.eqz (call $set_effective (i32.load (i32.add (i32.const 12288) (i32.shl (local.get $i) (i32.const 2))))))
        (then
          (drop (call $add (i32.const 2) (i32.const 1128) (i32.const 18) (i32.const 1148) (i32.const 4)))
          (drop (call $continue (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (global.set $pending (i32.const 0)))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
