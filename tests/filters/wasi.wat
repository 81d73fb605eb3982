;; WASI stdout/stderr and environment (ABI 0.2.1, imports wasi_snapshot_preview1).
;; _initialize marks the module initialised. On configure it writes
;; "wasi-stdout: configured" to stdout and "wasi-stderr: configured" to stderr. Each
;; request writes "wasi-stdout: request" to stdout and gets x-env-count (number of
;; environment entries), x-env-greeting (the value of GREETING, if set) and
;; x-initialized: 1 when _initialize ran.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $initialized (mut i32) (i32.const 0))

  (data (i32.const 1024) "wasi-stdout: configured\n")   ;; 24
  (data (i32.const 1056) "wasi-stderr: configured\n")   ;; 24
  (data (i32.const 1088) "wasi-stdout: request\n")      ;; 21
  (data (i32.const 1120) "GREETING=")                   ;; 9
  (data (i32.const 1136) "x-env-greeting")              ;; 14
  (data (i32.const 1152) "x-env-count")                 ;; 11
  (data (i32.const 1168) "x-initialized")               ;; 13
  (data (i32.const 1184) "1")

  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize") (global.set $initialized (i32.const 1)))
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
  ;; write [ptr, ptr+len) to fd through one iovec at 512
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 512) (local.get $ptr))
    (i32.store (i32.const 516) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 512) (i32.const 1) (i32.const 520))))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $write (i32.const 1) (i32.const 1024) (i32.const 24))
    (call $write (i32.const 2) (i32.const 1056) (i32.const 24))
    (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $count i32) (local $i i32) (local $entry i32) (local $len i32)
    (call $write (i32.const 1) (i32.const 1088) (i32.const 21))
    (if (i32.eqz (call $environ_sizes_get (i32.const 600) (i32.const 604)))
      (then
        (local.set $count (i32.load (i32.const 600)))
        ;; pointers at 8192 (up to 1024 entries), strings at 16384 (up to 32 KiB)
        (if (i32.and (i32.le_u (local.get $count) (i32.const 1024))
                     (i32.le_u (i32.load (i32.const 604)) (i32.const 32768)))
          (then
            (drop (call $environ_get (i32.const 8192) (i32.const 16384)))
            (block $out (loop $l
              (br_if $out (i32.ge_u (local.get $i) (local.get $count)))
              (local.set $entry (i32.load (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 2)))))
              ;; length up to the terminating NUL
              (local.set $len (i32.const 0))
              (block $end (loop $c
                (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $entry) (local.get $len)))))
                (local.set $len (i32.add (local.get $len) (i32.const 1)))
                (br $c)))
              (if (call $starts_with (local.get $entry) (local.get $len) (i32.const 1120) (i32.const 9))
                (then (drop (call $add (i32.const 0) (i32.const 1136) (i32.const 14)
                                       (i32.add (local.get $entry) (i32.const 9))
                                       (i32.sub (local.get $len) (i32.const 9))))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l)))))))
    (drop (call $add (i32.const 0) (i32.const 1152) (i32.const 11) (i32.const 400)
                      (call $itoa (local.get $count) (i32.const 400))))
    (if (global.get $initialized)
      (then (drop (call $add (i32.const 0) (i32.const 1168) (i32.const 13) (i32.const 1184) (i32.const 1)))))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
