;; Plugin and VM configuration (ABI 0.2.1): proxy_on_vm_start reads buffer 6 (VM
;; configuration), proxy_on_configure reads buffer 7 (plugin configuration); every
;; request gets x-plugin-config and x-vm-config headers with the values, and every
;; response gets x-plugin-config too.
(module
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $cfg_ptr (mut i32) (i32.const 0))
  (global $cfg_len (mut i32) (i32.const 0))
  (global $vm_ptr (mut i32) (i32.const 0))
  (global $vm_len (mut i32) (i32.const 0))

  (data (i32.const 1024) "x-plugin-config")   ;; 15
  (data (i32.const 1040) "x-vm-config")       ;; 11

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
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (if (i32.eqz (call $get_buf (i32.const 6) (i32.const 0) (local.get $size) (i32.const 256) (i32.const 260)))
      (then (global.set $vm_ptr (i32.load (i32.const 256)))
            (global.set $vm_len (i32.load (i32.const 260)))))
    (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (i32.eqz (call $get_buf (i32.const 7) (i32.const 0) (local.get $size) (i32.const 256) (i32.const 260)))
      (then (global.set $cfg_ptr (i32.load (i32.const 256)))
            (global.set $cfg_len (i32.load (i32.const 260)))))
    (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 15) (global.get $cfg_ptr) (global.get $cfg_len)))
    (drop (call $add (i32.const 0) (i32.const 1040) (i32.const 11) (global.get $vm_ptr) (global.get $vm_len)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 1024) (i32.const 15) (global.get $cfg_ptr) (global.get $cfg_len)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
