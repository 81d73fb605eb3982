;; Properties (ABI 0.2.1): proxy_get_property on Envoy attribute paths (segments joined
;; by NUL), each value copied into a header x-p-*: request headers from
;; on_request_headers, response headers from on_response_headers. Values are copied
;; raw (strings), as lowercase hex (binary encodings: bool, int64), or up to the first
;; ':' (addresses, whose ports differ between runs). A failed lookup gives
;; "status:<code>". proxy_set_property("wasm_custom") is read back as x-p-custom.
(module
  (import "env" "proxy_get_property"
    (func $get_prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property"
    (func $set_prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  ;; strings, one per 32-byte slot at 4096 + 32 * slot
  (data (i32.const 4096) "request\00path")                    ;; slot 0, 12 bytes
  (data (i32.const 4128) "x-p-path")                          ;; slot 1, 8 bytes
  (data (i32.const 4160) "request\00url_path")                ;; slot 2, 16 bytes
  (data (i32.const 4192) "x-p-url-path")                      ;; slot 3, 12 bytes
  (data (i32.const 4224) "request\00method")                  ;; slot 4, 14 bytes
  (data (i32.const 4256) "x-p-method")                        ;; slot 5, 10 bytes
  (data (i32.const 4288) "request\00host")                    ;; slot 6, 12 bytes
  (data (i32.const 4320) "x-p-host")                          ;; slot 7, 8 bytes
  (data (i32.const 4352) "request\00scheme")                  ;; slot 8, 14 bytes
  (data (i32.const 4384) "x-p-scheme")                        ;; slot 9, 10 bytes
  (data (i32.const 4416) "request\00protocol")                ;; slot 10, 16 bytes
  (data (i32.const 4448) "x-p-protocol")                      ;; slot 11, 12 bytes
  (data (i32.const 4480) "request\00query")                   ;; slot 12, 13 bytes
  (data (i32.const 4512) "x-p-query")                         ;; slot 13, 9 bytes
  (data (i32.const 4544) "request\00useragent")               ;; slot 14, 17 bytes
  (data (i32.const 4576) "x-p-useragent")                     ;; slot 15, 13 bytes
  (data (i32.const 4608) "request\00headers\00x-prop-in")     ;; slot 16, 25 bytes
  (data (i32.const 4640) "x-p-header-in")                     ;; slot 17, 13 bytes
  (data (i32.const 4672) "plugin_name")                       ;; slot 18, 11 bytes
  (data (i32.const 4704) "x-p-plugin-name")                   ;; slot 19, 15 bytes
  (data (i32.const 4736) "plugin_root_id")                    ;; slot 20, 14 bytes
  (data (i32.const 4768) "x-p-root-id")                       ;; slot 21, 11 bytes
  (data (i32.const 4800) "plugin_vm_id")                      ;; slot 22, 12 bytes
  (data (i32.const 4832) "x-p-vm-id")                         ;; slot 23, 9 bytes
  (data (i32.const 4864) "source\00address")                  ;; slot 24, 14 bytes
  (data (i32.const 4896) "x-p-source-ip")                     ;; slot 25, 13 bytes
  (data (i32.const 4928) "destination\00address")             ;; slot 26, 19 bytes
  (data (i32.const 4960) "x-p-destination-ip")                ;; slot 27, 18 bytes
  (data (i32.const 4992) "connection\00mtls")                 ;; slot 28, 15 bytes
  (data (i32.const 5024) "x-p-mtls")                          ;; slot 29, 8 bytes
  (data (i32.const 5056) "no_such_property")                  ;; slot 30, 16 bytes
  (data (i32.const 5088) "x-p-missing")                       ;; slot 31, 11 bytes
  (data (i32.const 5120) "request\00referer")                 ;; slot 32, 15 bytes
  (data (i32.const 5152) "x-p-referer")                       ;; slot 33, 11 bytes
  (data (i32.const 5184) "wasm_custom")                       ;; slot 34, 11 bytes
  (data (i32.const 5216) "x-p-custom")                        ;; slot 35, 10 bytes
  (data (i32.const 5248) "request\00headers\00x-absent")      ;; slot 36, 24 bytes
  (data (i32.const 5280) "x-p-header-absent")                 ;; slot 37, 17 bytes
  (data (i32.const 5312) "response\00code")                   ;; slot 38, 13 bytes
  (data (i32.const 5344) "x-p-response-code")                 ;; slot 39, 17 bytes
  (data (i32.const 5376) "response\00code_details")           ;; slot 40, 21 bytes
  (data (i32.const 5408) "x-p-code-details")                  ;; slot 41, 16 bytes
  (data (i32.const 5440) "upstream\00address")                ;; slot 42, 16 bytes
  (data (i32.const 5472) "x-p-upstream-ip")                   ;; slot 43, 15 bytes
  (data (i32.const 5504) "custom-value")                      ;; slot 44, 12 bytes
  (data (i32.const 5536) "x-p-set-status")                    ;; slot 45, 14 bytes
  (data (i32.const 5568) "status:")                           ;; slot 46, 7 bytes
  (data (i32.const 6000) "0123456789abcdef")

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

  (func $s (param $slot i32) (result i32)
    (i32.add (i32.const 4096) (i32.shl (local.get $slot) (i32.const 5))))

  ;; add header (map, slot hslot) = property (slot pslot) in mode 0 raw, 1 hex, 2 cut at ':'
  (func $prop (param $map i32) (param $pslot i32) (param $plen i32) (param $hslot i32) (param $hlen i32)
              (param $mode i32)
    (local $status i32) (local $ptr i32) (local $size i32) (local $i i32) (local $b i32)
    (local.set $status (call $get_prop (call $s (local.get $pslot)) (local.get $plen)
                                       (i32.const 256) (i32.const 260)))
    (if (local.get $status)
      (then
        (memory.copy (i32.const 6144) (call $s (i32.const 46)) (i32.const 7))
        (i32.store8 (i32.const 6151) (i32.add (i32.const 48) (local.get $status)))
        (drop (call $add (local.get $map) (call $s (local.get $hslot)) (local.get $hlen)
                         (i32.const 6144) (i32.const 8)))
        (return)))
    (local.set $ptr (i32.load (i32.const 256)))
    (local.set $size (i32.load (i32.const 260)))
    (if (i32.eq (local.get $mode) (i32.const 1))
      (then
        (block $out (loop $l
          (br_if $out (i32.ge_u (local.get $i) (local.get $size)))
          (local.set $b (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
          (i32.store8 (i32.add (i32.const 6144) (i32.shl (local.get $i) (i32.const 1)))
            (i32.load8_u (i32.add (i32.const 6000) (i32.shr_u (local.get $b) (i32.const 4)))))
          (i32.store8 (i32.add (i32.const 6145) (i32.shl (local.get $i) (i32.const 1)))
            (i32.load8_u (i32.add (i32.const 6000) (i32.and (local.get $b) (i32.const 15)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
        (local.set $ptr (i32.const 6144))
        (local.set $size (i32.shl (local.get $size) (i32.const 1)))))
    (if (i32.eq (local.get $mode) (i32.const 2))
      (then
        (block $out (loop $l
          (br_if $out (i32.ge_u (local.get $i) (local.get $size)))
          (br_if $out (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (i32.const 58)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
        (local.set $size (local.get $i))))
    (drop (call $add (local.get $map) (call $s (local.get $hslot)) (local.get $hlen)
                     (local.get $ptr) (local.get $size))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $status i32)
    (local.set $status (call $set_prop (call $s (i32.const 34)) (i32.const 11)
                                       (call $s (i32.const 44)) (i32.const 12)))
    (i32.store8 (i32.const 6100) (i32.add (i32.const 48) (local.get $status)))
    (drop (call $add (i32.const 0) (call $s (i32.const 45)) (i32.const 14) (i32.const 6100) (i32.const 1)))
    (call $prop (i32.const 0) (i32.const 0) (i32.const 12) (i32.const 1) (i32.const 8) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 2) (i32.const 16) (i32.const 3) (i32.const 12) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 4) (i32.const 14) (i32.const 5) (i32.const 10) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 6) (i32.const 12) (i32.const 7) (i32.const 8) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 8) (i32.const 14) (i32.const 9) (i32.const 10) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 10) (i32.const 16) (i32.const 11) (i32.const 12) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 12) (i32.const 13) (i32.const 13) (i32.const 9) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 14) (i32.const 17) (i32.const 15) (i32.const 13) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 16) (i32.const 25) (i32.const 17) (i32.const 13) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 18) (i32.const 11) (i32.const 19) (i32.const 15) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 20) (i32.const 14) (i32.const 21) (i32.const 11) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 22) (i32.const 12) (i32.const 23) (i32.const 9) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 24) (i32.const 14) (i32.const 25) (i32.const 13) (i32.const 2))
    (call $prop (i32.const 0) (i32.const 26) (i32.const 19) (i32.const 27) (i32.const 18) (i32.const 2))
    (call $prop (i32.const 0) (i32.const 28) (i32.const 15) (i32.const 29) (i32.const 8) (i32.const 1))
    (call $prop (i32.const 0) (i32.const 30) (i32.const 16) (i32.const 31) (i32.const 11) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 32) (i32.const 15) (i32.const 33) (i32.const 11) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 34) (i32.const 11) (i32.const 35) (i32.const 10) (i32.const 0))
    (call $prop (i32.const 0) (i32.const 36) (i32.const 24) (i32.const 37) (i32.const 17) (i32.const 0))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (call $prop (i32.const 2) (i32.const 38) (i32.const 13) (i32.const 39) (i32.const 17) (i32.const 1))
    (call $prop (i32.const 2) (i32.const 40) (i32.const 21) (i32.const 41) (i32.const 16) (i32.const 0))
    (call $prop (i32.const 2) (i32.const 42) (i32.const 16) (i32.const 43) (i32.const 15) (i32.const 2))
    (call $prop (i32.const 2) (i32.const 34) (i32.const 11) (i32.const 35) (i32.const 10) (i32.const 0))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
