;; Request trailers (ABI 0.2.1).
;; on_request_body at end of stream (a body without trailers) adds the request trailer
;; x-added-trailer: from-body (Envoy lets a filter add trailers only there).
;; on_request_trailers (a chunked body with trailers) replaces x-client-trailer with
;; "replaced", adds x-added-trailer: from-trailers and records how many trailers came.
;; The response gets x-trailer-count (that number, or "none" when on_request_trailers
;; was not called) and x-add-status (the status of the trailer add).
;; on_response_trailers replaces x-echo-trailer with "replaced-by-filter" and adds
;; x-added-response-trailer: <number of response trailers received>.
(module
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "x-added-trailer")    ;; 15
  (data (i32.const 1040) "from-body")          ;; 9
  (data (i32.const 1056) "from-trailers")      ;; 13
  (data (i32.const 1072) "x-client-trailer")   ;; 16
  (data (i32.const 1096) "replaced")           ;; 8
  (data (i32.const 1104) "x-trailer-count")    ;; 15
  (data (i32.const 1120) "none")               ;; 4
  (data (i32.const 1128) "x-add-status")       ;; 12
  (data (i32.const 1144) "x-echo-trailer")     ;; 14
  (data (i32.const 1160) "replaced-by-filter") ;; 18
  (data (i32.const 1184) "x-added-response-trailer")  ;; 24
  ;; per context at 8192 + ctx * 8: [trailer count + 1 (0 = not called)][add status + 1]

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
  (func $slot (param $ctx i32) (result i32)
    (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $ctx) (i32.const 1023)) (i32.const 3))))
  (func (export "proxy_on_context_create") (param $ctx i32) (param i32)
    (i64.store (call $slot (local.get $ctx)) (i64.const 0)))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (local.get $eos)
      (then (i32.store offset=4 (call $slot (local.get $ctx)) (i32.add (i32.const 1)
        (call $add (i32.const 1) (i32.const 1024) (i32.const 15) (i32.const 1040) (i32.const 9))))))
    (i32.const 0))

  (func (export "proxy_on_request_trailers") (param $ctx i32) (param $n i32) (result i32)
    (i32.store (call $slot (local.get $ctx)) (i32.add (local.get $n) (i32.const 1)))
    (drop (call $replace (i32.const 1) (i32.const 1072) (i32.const 16) (i32.const 1096) (i32.const 8)))
    (i32.store offset=4 (call $slot (local.get $ctx)) (i32.add (i32.const 1)
      (call $add (i32.const 1) (i32.const 1024) (i32.const 15) (i32.const 1056) (i32.const 13))))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $count i32) (local $st i32)
    (local.set $count (i32.load (call $slot (local.get $ctx))))
    (if (local.get $count)
      (then (drop (call $add (i32.const 2) (i32.const 1104) (i32.const 15) (i32.const 400)
                              (call $itoa (i32.sub (local.get $count) (i32.const 1)) (i32.const 400)))))
      (else (drop (call $add (i32.const 2) (i32.const 1104) (i32.const 15) (i32.const 1120) (i32.const 4)))))
    (local.set $st (i32.load offset=4 (call $slot (local.get $ctx))))
    (if (local.get $st)
      (then (drop (call $add (i32.const 2) (i32.const 1128) (i32.const 12) (i32.const 420)
                              (call $itoa (i32.sub (local.get $st) (i32.const 1)) (i32.const 420))))))
    (i32.const 0))

  (func (export "proxy_on_response_trailers") (param $ctx i32) (param $n i32) (result i32)
    (drop (call $replace (i32.const 3) (i32.const 1144) (i32.const 14) (i32.const 1160) (i32.const 18)))
    (drop (call $add (i32.const 3) (i32.const 1184) (i32.const 24) (i32.const 440)
                     (call $itoa (local.get $n) (i32.const 440))))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
