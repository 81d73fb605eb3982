;; Header map pairs (ABI 0.2.1): serialisation both ways.
;; Request: proxy_get_header_map_pairs, then proxy_set_header_map_pairs with the same
;; bytes (a round trip must change nothing), then headers x-pairs-count (number of
;; pairs), x-pairs-keys (the keys in order, comma-separated, pseudo-headers included)
;; and x-map-size (proxy_get_header_map_size).
;; Response: proxy_set_header_map_pairs replaces the whole map with
;; [(":status", "201"), ("x-replaced-map", "yes"), ("content-type", "text/plain")];
;; for a request that had x-bad-pairs, the same bytes plus one stray byte (84 instead of
;; 83), which the host must treat as an invalid (empty) map.
(module
  (import "env" "proxy_get_header_map_pairs"
    (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs"
    (func $set_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size"
    (func $map_size (param i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "x-pairs-count")   ;; 13
  (data (i32.const 1040) "x-pairs-keys")    ;; 12
  (data (i32.const 1056) "x-map-size")      ;; 10
  (data (i32.const 1072) "x-bad-pairs")     ;; 11
  ;; [(":status","201"), ("x-replaced-map","yes"), ("content-type","text/plain")]: 83 bytes
  (data (i32.const 1088)
    "\03\00\00\00"
    "\07\00\00\00\03\00\00\00" "\0e\00\00\00\03\00\00\00" "\0c\00\00\00\0a\00\00\00"
    ":status\00201\00" "x-replaced-map\00yes\00" "content-type\00text/plain\00")

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

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $ptr i32) (local $count i32) (local $i i32) (local $key i32) (local $out i32)
    (local $klen i32)
    ;; remember x-bad-pairs for the response (8192 + ctx * 4)
    (i32.store (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $ctx) (i32.const 1023)) (i32.const 2)))
      (i32.eqz (call $get_hdr (i32.const 0) (i32.const 1072) (i32.const 11) (i32.const 256) (i32.const 260))))
    (if (call $get_pairs (i32.const 0) (i32.const 256) (i32.const 260)) (then (return (i32.const 0))))
    (local.set $ptr (i32.load (i32.const 256)))
    (drop (call $set_pairs (i32.const 0) (local.get $ptr) (i32.load (i32.const 260))))
    (local.set $count (i32.load (local.get $ptr)))
    ;; keys start after the count and the size table; each key and value ends with NUL
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
      ;; skip key, NUL, value, NUL
      (local.set $key (i32.add (local.get $key) (i32.add (i32.add (local.get $klen) (i32.const 2))
        (i32.load (i32.add (local.get $ptr) (i32.add (i32.const 8) (i32.shl (local.get $i) (i32.const 3))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (drop (call $add (i32.const 0) (i32.const 1040) (i32.const 12) (i32.const 16384)
                      (i32.sub (local.get $out) (i32.const 16384))))
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 13) (i32.const 400)
                      (call $itoa (local.get $count) (i32.const 400))))
    (if (i32.eqz (call $map_size (i32.const 0) (i32.const 264)))
      (then (drop (call $add (i32.const 0) (i32.const 1056) (i32.const 10) (i32.const 420)
                             (call $itoa (i32.load (i32.const 264)) (i32.const 420))))))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $set_pairs (i32.const 2) (i32.const 1088)
      (i32.add (i32.const 83)
        (i32.load (i32.add (i32.const 8192) (i32.shl (i32.and (local.get $ctx) (i32.const 1023)) (i32.const 2)))))))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
