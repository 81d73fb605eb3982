;; An external-authorisation pattern over proxy_http_call (ABI 0.2.1). By :path:
;;   /auth-allow  GET /check on cluster "auth"; a 200 answer adds x-auth: allowed to the
;;                request and resumes it
;;   /auth-deny   the same call asks the echo for status 403 (x-echo-status); a non-200
;;                answer makes the callback send a local reply 403 "denied by callout
;;                <call :status>\n" with x-auth: denied, from the root context, for the
;;                paused request
;;   /auth-slow   the echo is asked to wait 2 s (x-echo-delay-ms) and the call's timeout
;;                is 300 ms; a call answered without headers adds x-auth: failed,
;;                x-call-status / x-call-message (proxy_get_status) and resumes
;; Other paths pass untouched.
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
  (import "env" "proxy_send_local_response"
    (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_status"
    (func $get_status (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) ":path")                 ;; 5
  (data (i32.const 1032) "/auth-allow")           ;; 11
  (data (i32.const 1048) "/auth-deny")            ;; 10
  (data (i32.const 1064) "/auth-slow")            ;; 10
  (data (i32.const 1080) "auth")                  ;; 4
  (data (i32.const 1088) ":status")               ;; 7
  (data (i32.const 1096) "200")                   ;; 3
  (data (i32.const 1104) "x-auth")                ;; 6
  (data (i32.const 1112) "allowed")               ;; 7
  (data (i32.const 1120) "failed")                ;; 6
  (data (i32.const 1128) "x-call-status")         ;; 13
  (data (i32.const 1144) "x-call-message")        ;; 14
  (data (i32.const 1160) "auth_denied")           ;; 11
  (data (i32.const 1176) "denied by callout ")    ;; 18
  ;; call headers [(:method GET) (:path /check) (:authority auth)], 69 bytes
  (data (i32.const 2048)
    "\03\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\06\00\00\00\0a\00\00\00\04\00\00\00"
    ":method\00GET\00:path\00/check\00:authority\00auth\00")
  ;; ... plus (x-echo-status 403), 95 bytes
  (data (i32.const 2176)
    "\04\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\06\00\00\00\0a\00\00\00\04\00\00\00\0d\00\00\00\03\00\00\00"
    ":method\00GET\00:path\00/check\00:authority\00auth\00x-echo-status\00403\00")
  ;; ... plus (x-echo-delay-ms 2000), 98 bytes
  (data (i32.const 2304)
    "\04\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\06\00\00\00\0a\00\00\00\04\00\00\00\0f\00\00\00\04\00\00\00"
    ":method\00GET\00:path\00/check\00:authority\00auth\00x-echo-delay-ms\00" "2000\00")
  ;; local reply headers [(x-auth denied) (content-type text/plain)], 58 bytes
  (data (i32.const 2432)
    "\02\00\00\00\06\00\00\00\06\00\00\00\0c\00\00\00\0a\00\00\00"
    "x-auth\00denied\00content-type\00text/plain\00")
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
  (func $itoa (param $v i32) (param $dst i32) (result i32)
    (local $len i32) (local $t i32) (local $i i32)
    (local.set $t (local.get $v))
    (local.set $len (i32.const 1))
    (block $done (loop $l
      (br_if $done (i32.lt_u (local.get $t) (i32.const 10)))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (br $l)))
    (local.set $i (local.get $len))
    (local.set $t (local.get $v))
    (loop $w
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i))
        (i32.add (i32.const 48) (i32.rem_u (local.get $t) (i32.const 10))))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (br_if $w (i32.gt_u (local.get $i) (i32.const 0))))
    (local.get $len))
  (func $slot (param $token i32) (result i32)
    (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $token) (i32.const 1023)) (i32.const 2))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $ptr i32) (local $size i32) (local $hdrs i32) (local $hlen i32) (local $timeout i32)
    (if (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260))
      (then (return (i32.const 0))))
    (local.set $ptr (i32.load (i32.const 256)))
    (local.set $size (i32.load (i32.const 260)))
    (local.set $timeout (i32.const 5000))
    (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1032) (i32.const 11))
      (then (local.set $hdrs (i32.const 2048)) (local.set $hlen (i32.const 69))))
    (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1048) (i32.const 10))
      (then (local.set $hdrs (i32.const 2176)) (local.set $hlen (i32.const 95))))
    (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1064) (i32.const 10))
      (then (local.set $hdrs (i32.const 2304)) (local.set $hlen (i32.const 98))
            (local.set $timeout (i32.const 300))))
    (if (i32.eqz (local.get $hdrs)) (then (return (i32.const 0))))
    (if (call $http_call (i32.const 1080) (i32.const 4) (local.get $hdrs) (local.get $hlen)
                         (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                         (local.get $timeout) (i32.const 264))
      (then (return (i32.const 0))))
    (i32.store (call $slot (i32.load (i32.const 264))) (local.get $ctx))
    (i32.const 1))

  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32)
        (param $nh i32) (param $body i32) (param $nt i32)
    (local $len i32)
    (drop (call $set_effective (i32.load (call $slot (local.get $token)))))
    (if (i32.eqz (local.get $nh))
      (then
        (drop (call $add (i32.const 0) (i32.const 1104) (i32.const 6) (i32.const 1120) (i32.const 6)))
        (if (i32.eqz (call $get_status (i32.const 256) (i32.const 260) (i32.const 264)))
          (then
            (drop (call $add (i32.const 0) (i32.const 1128) (i32.const 13) (i32.const 400)
                              (call $itoa (i32.load (i32.const 256)) (i32.const 400))))
            (drop (call $add (i32.const 0) (i32.const 1144) (i32.const 14)
                              (i32.load (i32.const 260)) (i32.load (i32.const 264))))))
        (drop (call $continue (i32.const 0)))
        (return)))
    (if (i32.eqz (call $get_hdr (i32.const 6) (i32.const 1088) (i32.const 7) (i32.const 256) (i32.const 260)))
      (then
        (if (call $starts_with (i32.load (i32.const 256)) (i32.load (i32.const 260)) (i32.const 1096) (i32.const 3))
          (then
            (drop (call $add (i32.const 0) (i32.const 1104) (i32.const 6) (i32.const 1112) (i32.const 7)))
            (drop (call $continue (i32.const 0)))
            (return)))))
    ;; body: "denied by callout " + the call's :status + "\n", built at 4096
    (memory.copy (i32.const 4096) (i32.const 1176) (i32.const 18))
    (local.set $len (i32.const 18))
    (if (i32.eqz (call $get_hdr (i32.const 6) (i32.const 1088) (i32.const 7) (i32.const 256) (i32.const 260)))
      (then
        (memory.copy (i32.const 4114) (i32.load (i32.const 256)) (i32.load (i32.const 260)))
        (local.set $len (i32.add (local.get $len) (i32.load (i32.const 260))))))
    (i32.store8 (i32.add (i32.const 4096) (local.get $len)) (i32.const 10))
    (drop (call $local (i32.const 403) (i32.const 1160) (i32.const 11) (i32.const 4096)
                       (i32.add (local.get $len) (i32.const 1))
                       (i32.const 2432) (i32.const 58) (i32.const -1))))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
