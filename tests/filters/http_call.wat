;; proxy_http_call with pause/resume (ABI 0.2.1).
;; on_request_headers dispatches GET /auth?x=1 to cluster "callout" ("dead" when the
;; :path starts with /dead, the unknown "nope" when it starts with /unknown) and
;; returns Pause. proxy_on_http_call_response (called on the root context) looks up
;; the request's context by token, makes it effective, copies from the call response
;; into the request headers: x-callout-status (:status), x-callout-upstream
;; (x-upstream-name), x-callout-echo (x-echo-x-from-filter) and x-callout-body (first
;; 20 bytes of the body); a failed call adds x-callout-failed: 1. Then
;; proxy_continue_stream(HTTP_REQUEST). A call that cannot be dispatched adds
;; x-callout-error: <status> and the request continues at once.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call"
    (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context"
    (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream"
    (func $continue (param i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) ":path")          ;; 5
  (data (i32.const 1032) "/dead")          ;; 5
  (data (i32.const 1040) "/unknown")       ;; 8
  (data (i32.const 1056) "callout")        ;; 7
  (data (i32.const 1064) "dead")           ;; 4
  (data (i32.const 1072) "nope")           ;; 4
  (data (i32.const 1088) ":status")        ;; 7
  (data (i32.const 1096) "x-upstream-name")      ;; 15
  (data (i32.const 1112) "x-echo-x-from-filter") ;; 20
  (data (i32.const 1136) "x-callout-status")     ;; 16
  (data (i32.const 1156) "x-callout-upstream")   ;; 18
  (data (i32.const 1176) "x-callout-echo")       ;; 14
  (data (i32.const 1192) "x-callout-body")       ;; 14
  (data (i32.const 1208) "x-callout-failed")     ;; 16
  (data (i32.const 1228) "x-callout-error")      ;; 15
  (data (i32.const 1244) "1")
  ;; call headers: :method GET, :path /auth?x=1, :authority callout,
  ;; x-echo-back x-from-filter, x-from-filter hello-callout  (145 bytes)
  (data (i32.const 1280)
    "\05\00\00\00"
    "\07\00\00\00\03\00\00\00" "\05\00\00\00\09\00\00\00" "\0a\00\00\00\07\00\00\00"
    "\0b\00\00\00\0d\00\00\00" "\0d\00\00\00\0d\00\00\00"
    ":method\00GET\00" ":path\00/auth?x=1\00" ":authority\00callout\00"
    "x-echo-back\00x-from-filter\00" "x-from-filter\00hello-callout\00")
  ;; token -> context id table at 8192 + (token & 1023) * 4

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
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

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

  (func $slot (param $token i32) (result i32)
    (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $token) (i32.const 1023)) (i32.const 2))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $cluster i32) (local $clen i32) (local $status i32)
    (local.set $cluster (i32.const 1056))
    (local.set $clen (i32.const 7))
    (if (i32.eqz (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
      (then
        (if (call $starts_with (i32.load (i32.const 256)) (i32.load (i32.const 260)) (i32.const 1032) (i32.const 5))
          (then (local.set $cluster (i32.const 1064)) (local.set $clen (i32.const 4))))
        (if (call $starts_with (i32.load (i32.const 256)) (i32.load (i32.const 260)) (i32.const 1040) (i32.const 8))
          (then (local.set $cluster (i32.const 1072)) (local.set $clen (i32.const 4))))))
    (local.set $status (call $http_call (local.get $cluster) (local.get $clen)
      (i32.const 1280) (i32.const 145) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 5000) (i32.const 264)))
    (if (local.get $status)
      (then
        (i32.store8 (i32.const 272) (i32.add (i32.const 48) (local.get $status)))
        (drop (call $add (i32.const 0) (i32.const 1228) (i32.const 15) (i32.const 272) (i32.const 1)))
        (return (i32.const 0))))
    (i32.store (call $slot (i32.load (i32.const 264))) (local.get $ctx))
    (i32.const 1))

  ;; copy the call response's header $name into request header $to (if present)
  (func $copy (param $name i32) (param $nlen i32) (param $to i32) (param $tlen i32)
    (if (i32.eqz (call $get_hdr (i32.const 6) (local.get $name) (local.get $nlen) (i32.const 256) (i32.const 260)))
      (then (drop (call $add (i32.const 0) (local.get $to) (local.get $tlen)
                             (i32.load (i32.const 256)) (i32.load (i32.const 260)))))))

  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32)
        (param $nh i32) (param $body i32) (param $nt i32)
    (drop (call $set_effective (i32.load (call $slot (local.get $token)))))
    (if (i32.eqz (local.get $nh))
      (then (drop (call $add (i32.const 0) (i32.const 1208) (i32.const 16) (i32.const 1244) (i32.const 1))))
      (else
        (call $copy (i32.const 1088) (i32.const 7) (i32.const 1136) (i32.const 16))
        (call $copy (i32.const 1096) (i32.const 15) (i32.const 1156) (i32.const 18))
        (call $copy (i32.const 1112) (i32.const 20) (i32.const 1176) (i32.const 14))
        (if (i32.eqz (call $get_buf (i32.const 4) (i32.const 0) (i32.const 20) (i32.const 256) (i32.const 260)))
          (then (drop (call $add (i32.const 0) (i32.const 1192) (i32.const 14)
                                 (i32.load (i32.const 256)) (i32.load (i32.const 260))))))))
    (drop (call $continue (i32.const 0))))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
