;; Request and response body rewrite with buffering (ABI 0.2.1).
;; Headers: content-length is removed (the bodies change size); a request carrying
;; x-rewrite-response marks its context for the response rewrite.
;; Request body: Pause (buffer) until end_of_stream, then prepend "<<" and append ">>"
;; with proxy_set_buffer_bytes.
;; Response body (marked contexts only): Pause until end_of_stream, then replace the
;; whole body with "rewritten:<request body size>:<first 20 bytes of the response>".
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value"
    (func $remove (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes"
    (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "content-length")      ;; 14
  (data (i32.const 1040) "x-rewrite-response")  ;; 18
  (data (i32.const 1064) "<<")
  (data (i32.const 1068) ">>")
  (data (i32.const 1072) "rewritten:")          ;; 10
  ;; per-context state at 8192 + ctx*8: [flag rewrite-response][request body size]

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

  (func $slot (param $ctx i32) (result i32)
    (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $ctx) (i32.const 1023)) (i32.const 3))))

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

  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (i64.store (call $slot (local.get $ctx)) (i64.const 0)))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $remove (i32.const 0) (i32.const 1024) (i32.const 14)))
    (if (i32.eqz (call $get_hdr (i32.const 0) (i32.const 1040) (i32.const 18) (i32.const 256) (i32.const 260)))
      (then (i32.store (call $slot (local.get $ctx)) (i32.const 1))))
    (i32.const 0))

  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
    (i32.store offset=4 (call $slot (local.get $ctx)) (local.get $size))
    (drop (call $set_buf (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1064) (i32.const 2)))
    (drop (call $set_buf (i32.const 0) (i32.add (local.get $size) (i32.const 2)) (i32.const 0)
                         (i32.const 1068) (i32.const 2)))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.load (call $slot (local.get $ctx)))
      (then (drop (call $remove (i32.const 2) (i32.const 1024) (i32.const 14)))))
    (i32.const 0))

  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (local $out i32) (local $len i32) (local $n i32)
    (if (i32.eqz (i32.load (call $slot (local.get $ctx)))) (then (return (i32.const 0))))
    (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
    ;; "rewritten:" + request size + ":" + first 20 bytes
    (local.set $out (i32.const 4096))
    (memory.copy (local.get $out) (i32.const 1072) (i32.const 10))
    (local.set $len (i32.add (i32.const 10)
      (call $itoa (i32.load offset=4 (call $slot (local.get $ctx))) (i32.add (local.get $out) (i32.const 10)))))
    (i32.store8 (i32.add (local.get $out) (local.get $len)) (i32.const 58))
    (local.set $len (i32.add (local.get $len) (i32.const 1)))
    (if (i32.eqz (call $get_buf (i32.const 1) (i32.const 0) (i32.const 20) (i32.const 256) (i32.const 260)))
      (then
        (local.set $n (i32.load (i32.const 260)))
        (memory.copy (i32.add (local.get $out) (local.get $len)) (i32.load (i32.const 256)) (local.get $n))
        (local.set $len (i32.add (local.get $len) (local.get $n)))))
    (drop (call $set_buf (i32.const 1) (i32.const 0) (local.get $size) (local.get $out) (local.get $len)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
