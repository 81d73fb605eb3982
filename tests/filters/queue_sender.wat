;; Shared queue sender (ABI 0.2.1), an HTTP filter (VM A) in the same vm_id "qvm" as the
;; receiver singleton (VM B). Each request resolves queue ("qvm", "events")
;; (x-resolve-status), and a request whose :path starts with /enqueue enqueues its path
;; (x-enqueue-status). Every request first reports what B wrote to shared data: x-last
;; (the last message B dequeued, "none" before any) and x-count (messages B dequeued).
(module
  (import "env" "proxy_resolve_shared_queue"
    (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue"
    (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data"
    (func $get_sd (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) "qvm")                ;; 3
  (data (i32.const 1028) "events")             ;; 6
  (data (i32.const 1036) "last")               ;; 4
  (data (i32.const 1044) "count")              ;; 5
  (data (i32.const 1052) ":path")              ;; 5
  (data (i32.const 1060) "/enqueue")           ;; 8
  (data (i32.const 1072) "x-resolve-status")   ;; 16
  (data (i32.const 1092) "x-enqueue-status")   ;; 16
  (data (i32.const 1112) "x-last")             ;; 6
  (data (i32.const 1120) "x-count")            ;; 7
  (data (i32.const 1128) "none")               ;; 4

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
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func $digit_header (param $name i32) (param $len i32) (param $v i32)
    (i32.store8 (i32.const 320) (i32.add (i32.const 48) (local.get $v)))
    (drop (call $add (i32.const 0) (local.get $name) (local.get $len) (i32.const 320) (i32.const 1))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $st i32)
    (if (i32.eqz (call $get_sd (i32.const 1036) (i32.const 4) (i32.const 256) (i32.const 260) (i32.const 264)))
      (then (drop (call $add (i32.const 0) (i32.const 1112) (i32.const 6) (i32.load (i32.const 256)) (i32.load (i32.const 260)))))
      (else (drop (call $add (i32.const 0) (i32.const 1112) (i32.const 6) (i32.const 1128) (i32.const 4)))))
    (if (i32.eqz (call $get_sd (i32.const 1044) (i32.const 5) (i32.const 256) (i32.const 260) (i32.const 264)))
      (then (drop (call $add (i32.const 0) (i32.const 1120) (i32.const 7) (i32.const 400)
                             (call $itoa (i32.load (i32.load (i32.const 256))) (i32.const 400))))))
    (local.set $st (call $resolve (i32.const 1024) (i32.const 3) (i32.const 1028) (i32.const 6) (i32.const 280)))
    (call $digit_header (i32.const 1072) (i32.const 16) (local.get $st))
    (if (i32.eqz (local.get $st))
      (then
        (if (i32.eqz (call $get_hdr (i32.const 0) (i32.const 1052) (i32.const 5) (i32.const 256) (i32.const 260)))
          (then
            (if (call $starts_with (i32.load (i32.const 256)) (i32.load (i32.const 260)) (i32.const 1060) (i32.const 8))
              (then
                (call $digit_header (i32.const 1092) (i32.const 16)
                  (call $enqueue (i32.load (i32.const 280)) (i32.load (i32.const 256)) (i32.load (i32.const 260))))))))))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
