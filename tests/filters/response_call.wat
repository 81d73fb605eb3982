;; proxy_http_call from the response path (ABI 0.2.1). on_response_headers dispatches
;; GET /check to cluster "callout" and pauses the response; the answer (on the root
;; context) makes the stream effective, adds x-response-call: <the call's :status> to
;; the response headers and resumes with proxy_continue_stream(HTTP_RESPONSE).
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call"
    (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context"
    (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream"
    (func $continue (param i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "callout")           ;; 7
  (data (i32.const 1032) ":status")           ;; 7
  (data (i32.const 1040) "x-response-call")   ;; 15
  ;; [(:method GET) (:path /check) (:authority callout)], 72 bytes
  (data (i32.const 2048)
    "\03\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\06\00\00\00\0a\00\00\00\07\00\00\00"
    ":method\00GET\00:path\00/check\00:authority\00callout\00")
  ;; token -> context id at 8192 + (token & 1023) * 4

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
  (func $slot (param $token i32) (result i32)
    (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $token) (i32.const 1023)) (i32.const 2))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (call $http_call (i32.const 1024) (i32.const 7) (i32.const 2048) (i32.const 72)
                         (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                         (i32.const 5000) (i32.const 264))
      (then (return (i32.const 0))))
    (i32.store (call $slot (i32.load (i32.const 264))) (local.get $ctx))
    (i32.const 1))

  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32)
        (param $nh i32) (param $body i32) (param $nt i32)
    (drop (call $set_effective (i32.load (call $slot (local.get $token)))))
    (if (i32.eqz (call $get_hdr (i32.const 6) (i32.const 1032) (i32.const 7) (i32.const 256) (i32.const 260)))
      (then (drop (call $add (i32.const 2) (i32.const 1040) (i32.const 15)
                             (i32.load (i32.const 256)) (i32.load (i32.const 260))))))
    (drop (call $continue (i32.const 1))))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
