;; Local response (ABI 0.2.1): a request whose :path starts with "/deny" gets
;; 403 "denied by wasm filter\n" with headers x-local-reply: wasm and
;; content-type: text/plain, sent with proxy_send_local_response. Every response
;; that passes this filter's encode path gets x-resp-filter: seen.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) ":path")                     ;; 5
  (data (i32.const 1040) "/deny")                     ;; 5
  (data (i32.const 1056) "wasm_denied")               ;; 11
  (data (i32.const 1072) "denied by wasm filter\n")   ;; 22
  ;; pairs: [("x-local-reply","wasm"), ("content-type","text/plain")], 63 bytes
  (data (i32.const 1104)
    "\02\00\00\00" "\0d\00\00\00" "\04\00\00\00" "\0c\00\00\00" "\0a\00\00\00"
    "x-local-reply\00" "wasm\00" "content-type\00" "text/plain\00")
  (data (i32.const 1200) "x-resp-filter")             ;; 13
  (data (i32.const 1216) "seen")                      ;; 4

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

  ;; true when [ptr, ptr+size) starts with the len bytes at lit
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

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.ne (call $get (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260))
                (i32.const 0))
      (then (return (i32.const 0))))
    (if (call $starts_with (i32.load (i32.const 256)) (i32.load (i32.const 260)) (i32.const 1040) (i32.const 5))
      (then
        (drop (call $local (i32.const 403) (i32.const 1056) (i32.const 11) (i32.const 1072) (i32.const 22)
                           (i32.const 1104) (i32.const 63) (i32.const -1)))
        (return (i32.const 1))))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 1200) (i32.const 13) (i32.const 1216) (i32.const 4)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
