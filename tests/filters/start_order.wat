;; Start-up entry points (ABI 0.2.1). The module exports _initialize, main(argc, argv)
;; and _start; each appends its letter to a record (I, M with its two arguments, S),
;; and so do proxy_on_context_create of the root (C), proxy_on_vm_start (V) and
;; proxy_on_configure (F). Requests get x-start-order: the record.
(module
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $end (mut i32) (i32.const 4096))

  (data (i32.const 1024) "x-start-order")   ;; 13

  (func $mark (param $b i32)
    (i32.store8 (global.get $end) (local.get $b))
    (global.set $end (i32.add (global.get $end) (i32.const 1))))

  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize") (call $mark (i32.const 73)))
  (func (export "main") (param $argc i32) (param $argv i32) (result i32)
    (call $mark (i32.const 77))
    (call $mark (i32.add (i32.const 48) (local.get $argc)))
    (call $mark (i32.add (i32.const 48) (local.get $argv)))
    (i32.const 0))
  (func (export "_start") (call $mark (i32.const 83)))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7))
                               (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
        (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (local.get $p))
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (i32.eqz (local.get $parent)) (then (call $mark (i32.const 67)))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (call $mark (i32.const 86)) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $mark (i32.const 70)) (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 13) (i32.const 4096)
                      (i32.sub (global.get $end) (i32.const 4096))))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
