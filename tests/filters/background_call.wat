;; proxy_http_call from the root context, with no stream (ABI 0.2.1). The first tick
;; (20 ms) POSTs "ping-body" to cluster "callout" at /background with x-marker: m. When
;; the answer comes, the root keeps: the call response's header keys in order
;; (proxy_get_header_map_pairs on map 6), its header count and body size, and its whole
;; body (buffer 4: the echo's JSON of what the callout upstream received). Every request
;; then gets x-bg-keys, x-bg-counts ("<headers>,<body size>") and x-bg-body.
(module
  (import "env" "proxy_http_call"
    (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds"
    (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs"
    (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $called (mut i32) (i32.const 0))
  (global $answered (mut i32) (i32.const 0))
  (global $keys_len (mut i32) (i32.const 0))     ;; keys at 16384
  (global $counts_len (mut i32) (i32.const 0))   ;; counts at 20480
  (global $body_len (mut i32) (i32.const 0))     ;; body at 24576 (up to 8 KiB)

  (data (i32.const 1024) "callout")       ;; 7
  (data (i32.const 1032) "ping-body")     ;; 9
  (data (i32.const 1048) "x-bg-keys")     ;; 9
  (data (i32.const 1064) "x-bg-counts")   ;; 11
  (data (i32.const 1080) "x-bg-body")     ;; 9
  ;; [(:method POST) (:path /background) (:authority callout) (x-marker m)
  ;;  (x-echo-back x-marker)], 126 bytes
  (data (i32.const 2048)
    "\05\00\00\00\07\00\00\00\04\00\00\00\05\00\00\00\0b\00\00\00\0a\00\00\00\07\00\00\00"
    "\08\00\00\00\01\00\00\00\0b\00\00\00\08\00\00\00"
    ":method\00POST\00:path\00/background\00:authority\00callout\00x-marker\00m\00"
    "x-echo-back\00x-marker\00")

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
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.eqz (call $set_tick (i32.const 20))))

  (func (export "proxy_on_tick") (param $root i32)
    (if (global.get $called) (then (return)))
    (global.set $called (i32.const 1))
    (drop (call $http_call (i32.const 1024) (i32.const 7) (i32.const 2048) (i32.const 126)
                           (i32.const 1032) (i32.const 9) (i32.const 0) (i32.const 0)
                           (i32.const 5000) (i32.const 256))))

  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32)
        (param $nh i32) (param $size i32) (param $nt i32)
    (local $ptr i32) (local $count i32) (local $i i32) (local $key i32) (local $klen i32)
    (local $out i32)
    (global.set $answered (i32.const 1))
    ;; "<headers>,<body size>"
    (local.set $out (i32.add (i32.const 20480) (call $itoa (local.get $nh) (i32.const 20480))))
    (i32.store8 (local.get $out) (i32.const 44))
    (local.set $out (i32.add (local.get $out) (i32.const 1)))
    (local.set $out (i32.add (local.get $out) (call $itoa (local.get $size) (local.get $out))))
    (global.set $counts_len (i32.sub (local.get $out) (i32.const 20480)))
    ;; keys in order
    (if (i32.eqz (call $get_pairs (i32.const 6) (i32.const 264) (i32.const 268)))
      (then
        (local.set $ptr (i32.load (i32.const 264)))
        (if (i32.load (i32.const 268))
          (then
            (local.set $count (i32.load (local.get $ptr)))
            (local.set $key (i32.add (local.get $ptr) (i32.add (i32.const 4) (i32.shl (local.get $count) (i32.const 3)))))
            (local.set $out (i32.const 16384))
            (block $done (loop $l
              (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
              (local.set $klen (i32.load (i32.add (local.get $ptr) (i32.add (i32.const 4) (i32.shl (local.get $i) (i32.const 3))))))
              (if (local.get $i) (then
                (i32.store8 (local.get $out) (i32.const 44))
                (local.set $out (i32.add (local.get $out) (i32.const 1)))))
              (memory.copy (local.get $out) (local.get $key) (local.get $klen))
              (local.set $out (i32.add (local.get $out) (local.get $klen)))
              (local.set $key (i32.add (local.get $key) (i32.add (i32.add (local.get $klen) (i32.const 2))
                (i32.load (i32.add (local.get $ptr) (i32.add (i32.const 8) (i32.shl (local.get $i) (i32.const 3))))))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l)))
            (global.set $keys_len (i32.sub (local.get $out) (i32.const 16384)))))))
    ;; the whole body
    (if (i32.eqz (call $get_buf (i32.const 4) (i32.const 0) (i32.const 8192) (i32.const 272) (i32.const 276)))
      (then
        (global.set $body_len (i32.load (i32.const 276)))
        (memory.copy (i32.const 24576) (i32.load (i32.const 272)) (global.get $body_len)))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (global.get $answered)
      (then
        (drop (call $add (i32.const 0) (i32.const 1048) (i32.const 9) (i32.const 16384) (global.get $keys_len)))
        (drop (call $add (i32.const 0) (i32.const 1064) (i32.const 11) (i32.const 20480) (global.get $counts_len)))
        (drop (call $add (i32.const 0) (i32.const 1080) (i32.const 9) (i32.const 24576) (global.get $body_len)))))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
