;; Header add / replace / remove on the request and on the response (ABI 0.2.1).
;; Request:  add x-added-req: yes, replace x-replace-me with "replaced", remove x-remove-me.
;; Response: add x-added-resp: yes, replace content-type with "text/x-filtered",
;;           remove x-upstream-name.
(module
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value"
    (func $remove (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "x-added-req")       ;; 11
  (data (i32.const 1040) "yes")               ;; 3
  (data (i32.const 1048) "x-replace-me")      ;; 12
  (data (i32.const 1064) "replaced")          ;; 8
  (data (i32.const 1080) "x-remove-me")       ;; 11
  (data (i32.const 1096) "x-added-resp")      ;; 12
  (data (i32.const 1112) "content-type")      ;; 12
  (data (i32.const 1128) "text/x-filtered")   ;; 15
  (data (i32.const 1144) "x-upstream-name")   ;; 15

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
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 11) (i32.const 1040) (i32.const 3)))
    (drop (call $replace (i32.const 0) (i32.const 1048) (i32.const 12) (i32.const 1064) (i32.const 8)))
    (drop (call $remove (i32.const 0) (i32.const 1080) (i32.const 11)))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 1096) (i32.const 12) (i32.const 1040) (i32.const 3)))
    (drop (call $replace (i32.const 2) (i32.const 1112) (i32.const 12) (i32.const 1128) (i32.const 15)))
    (drop (call $remove (i32.const 2) (i32.const 1144) (i32.const 15)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
