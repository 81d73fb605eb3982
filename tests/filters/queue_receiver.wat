;; Shared queue receiver (ABI 0.2.1), run as a singleton service (VM B). On configure it
;; registers the queue "events"; on proxy_on_queue_ready it dequeues every message,
;; stores the last one in shared data "last" and counts them in "count" (4 bytes).
(module
  (import "env" "proxy_register_shared_queue"
    (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue"
    (func $dequeue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data"
    (func $get_sd (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data"
    (func $set_sd (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "events")   ;; 6
  (data (i32.const 1032) "last")     ;; 4
  (data (i32.const 1040) "count")    ;; 5

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
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (i32.eqz (call $register (i32.const 1024) (i32.const 6) (i32.const 280))))

  (func (export "proxy_on_queue_ready") (param $root i32) (param $qid i32)
    (local $count i32)
    (block $empty (loop $next
      (br_if $empty (call $dequeue (local.get $qid) (i32.const 256) (i32.const 260)))
      (drop (call $set_sd (i32.const 1032) (i32.const 4)
                           (i32.load (i32.const 256)) (i32.load (i32.const 260)) (i32.const 0)))
      (local.set $count (i32.const 0))
      (if (i32.eqz (call $get_sd (i32.const 1040) (i32.const 5) (i32.const 264) (i32.const 268) (i32.const 272)))
        (then (local.set $count (i32.load (i32.load (i32.const 264))))))
      (i32.store (i32.const 300) (i32.add (local.get $count) (i32.const 1)))
      (drop (call $set_sd (i32.const 1040) (i32.const 5) (i32.const 300) (i32.const 4) (i32.const 0)))
      (br $next))))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
