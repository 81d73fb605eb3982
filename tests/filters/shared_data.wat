;; Shared data counters (ABI 0.2.1). Each request increments the 4-byte counter
;; "counter" with a get / set-with-CAS loop (retrying on CAS_MISMATCH) and its response
;; gets x-counter: <value after its increment>. The request also records the status of
;; a get on a missing key (x-sd-missing) and of a set with a stale CAS (x-sd-bad-cas).
(module
  (import "env" "proxy_get_shared_data"
    (func $get_sd (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data"
    (func $set_sd (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "counter")        ;; 7
  (data (i32.const 1032) "missing-key")    ;; 11
  (data (i32.const 1048) "x-counter")      ;; 9
  (data (i32.const 1064) "x-sd-missing")   ;; 12
  (data (i32.const 1080) "x-sd-bad-cas")   ;; 12
  ;; per-context counter value at 8192 + (ctx & 1023) * 4

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
    (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $ctx) (i32.const 1023)) (i32.const 2))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $st i32) (local $old i32) (local $cas i32) (local $tries i32)
    (block $done (loop $retry
      (local.set $st (call $get_sd (i32.const 1024) (i32.const 7) (i32.const 256) (i32.const 260) (i32.const 264)))
      (local.set $old (i32.const 0))
      (local.set $cas (i32.const 0))
      (if (i32.eqz (local.get $st))
        (then (local.set $old (i32.load (i32.load (i32.const 256))))
              (local.set $cas (i32.load (i32.const 264)))))
      (i32.store (i32.const 300) (i32.add (local.get $old) (i32.const 1)))
      (local.set $st (call $set_sd (i32.const 1024) (i32.const 7) (i32.const 300) (i32.const 4) (local.get $cas)))
      (br_if $done (i32.eqz (local.get $st)))
      (local.set $tries (i32.add (local.get $tries) (i32.const 1)))
      (br_if $retry (i32.lt_u (local.get $tries) (i32.const 10)))))
    (i32.store (call $slot (local.get $ctx)) (i32.load (i32.const 300)))
    ;; a get on a missing key
    (local.set $st (call $get_sd (i32.const 1032) (i32.const 11) (i32.const 256) (i32.const 260) (i32.const 264)))
    (i32.store8 (i32.const 320) (i32.add (i32.const 48) (local.get $st)))
    (drop (call $add (i32.const 0) (i32.const 1064) (i32.const 12) (i32.const 320) (i32.const 1)))
    ;; a set with a CAS that cannot be current
    (local.set $st (call $set_sd (i32.const 1024) (i32.const 7) (i32.const 300) (i32.const 4) (i32.const 0x7ffffff0)))
    (i32.store8 (i32.const 320) (i32.add (i32.const 48) (local.get $st)))
    (drop (call $add (i32.const 0) (i32.const 1080) (i32.const 12) (i32.const 320) (i32.const 1)))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 1048) (i32.const 9) (i32.const 400)
                      (call $itoa (i32.load (call $slot (local.get $ctx))) (i32.const 400))))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
