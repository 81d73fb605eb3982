;; Pseudo-header rewrites (ABI 0.2.1). Request: :path becomes "/rewritten?by=wasm",
;; :authority "rewritten.test", :method "PUT"; a header added with an upper-case name
;; "X-Upper-Name: Value" (hosts lower-case keys); user-agent removed. Response: :status
;; replaced with "299".
(module
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value"
    (func $remove (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) ":path")               ;; 5
  (data (i32.const 1032) "/rewritten?by=wasm")  ;; 18
  (data (i32.const 1056) ":authority")          ;; 10
  (data (i32.const 1072) "rewritten.test")      ;; 14
  (data (i32.const 1088) ":method")             ;; 7
  (data (i32.const 1096) "PUT")                 ;; 3
  (data (i32.const 1104) "X-Upper-Name")        ;; 12
  (data (i32.const 1120) "Value")               ;; 5
  (data (i32.const 1128) "user-agent")          ;; 10
  (data (i32.const 1144) ":status")             ;; 7
  (data (i32.const 1152) "299")                 ;; 3

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
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $replace (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1032) (i32.const 18)))
    (drop (call $replace (i32.const 0) (i32.const 1056) (i32.const 10) (i32.const 1072) (i32.const 14)))
    (drop (call $replace (i32.const 0) (i32.const 1088) (i32.const 7) (i32.const 1096) (i32.const 3)))
    (drop (call $add (i32.const 0) (i32.const 1104) (i32.const 12) (i32.const 1120) (i32.const 5)))
    (drop (call $remove (i32.const 0) (i32.const 1128) (i32.const 10)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $replace (i32.const 2) (i32.const 1144) (i32.const 7) (i32.const 1152) (i32.const 3)))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
