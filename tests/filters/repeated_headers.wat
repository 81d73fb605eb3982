;; Repeated headers (ABI 0.2.1). A request carrying x-dup twice (and cookie twice)
;; gets x-dup-value (proxy_get_header_map_value: which value, or how they are joined),
;; x-cookie-value (the same for cookie) and x-dup-count (how many x-dup entries
;; proxy_get_header_map_pairs returns). Then x-dup is replaced (one value must remain)
;; and a second x-added value is added next to an existing one.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs"
    (func $pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "x-dup")            ;; 5
  (data (i32.const 1032) "cookie")           ;; 6
  (data (i32.const 1040) "x-dup-value")      ;; 11
  (data (i32.const 1056) "x-cookie-value")   ;; 14
  (data (i32.const 1072) "x-dup-count")      ;; 11
  (data (i32.const 1088) "replaced")         ;; 8
  (data (i32.const 1096) "x-added")          ;; 7
  (data (i32.const 1104) "second")           ;; 6

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
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  ;; number of pairs in map 0 whose key is "x-dup"
  (func $count_dup (result i32)
    (local $ptr i32) (local $n i32) (local $i i32) (local $key i32) (local $klen i32)
    (local $found i32)
    (if (call $pairs (i32.const 0) (i32.const 256) (i32.const 260)) (then (return (i32.const 0))))
    (local.set $ptr (i32.load (i32.const 256)))
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $key (i32.add (local.get $ptr) (i32.add (i32.const 4) (i32.shl (local.get $n) (i32.const 3)))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $klen (i32.load (i32.add (local.get $ptr) (i32.add (i32.const 4) (i32.shl (local.get $i) (i32.const 3))))))
      (if (i32.and (i32.eq (local.get $klen) (i32.const 5))
                   (i32.and (i32.eq (i32.load (local.get $key)) (i32.load (i32.const 1024)))
                            (i32.eq (i32.load8_u offset=4 (local.get $key)) (i32.const 112))))
        (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
      (local.set $key (i32.add (local.get $key) (i32.add (i32.add (local.get $klen) (i32.const 2))
        (i32.load (i32.add (local.get $ptr) (i32.add (i32.const 8) (i32.shl (local.get $i) (i32.const 3))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $found))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $count i32)
    (local.set $count (call $count_dup))
    (if (i32.eqz (call $get (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 264) (i32.const 268)))
      (then (drop (call $add (i32.const 0) (i32.const 1040) (i32.const 11)
                             (i32.load (i32.const 264)) (i32.load (i32.const 268))))))
    (if (i32.eqz (call $get (i32.const 0) (i32.const 1032) (i32.const 6) (i32.const 264) (i32.const 268)))
      (then (drop (call $add (i32.const 0) (i32.const 1056) (i32.const 14)
                             (i32.load (i32.const 264)) (i32.load (i32.const 268))))))
    (drop (call $add (i32.const 0) (i32.const 1072) (i32.const 11) (i32.const 400)
                      (call $itoa (local.get $count) (i32.const 400))))
    (drop (call $replace (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1088) (i32.const 8)))
    (drop (call $add (i32.const 0) (i32.const 1096) (i32.const 7) (i32.const 1104) (i32.const 6)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
