;; Metrics and logging (ABI 0.2.1). On configure the root defines a counter
;; "conformance_requests", a gauge "conformance_level" and a histogram
;; "conformance_sizes", then defines the counter a second time. Each request
;; increments the counter, sets the gauge to 10 * counter, records 5 in the histogram,
;; and gets x-metric-counter / x-metric-gauge (proxy_get_metric), x-metric-hist-status
;; (the status of proxy_get_metric on the histogram) and x-metric-alias (the counter
;; read through the second definition's id: Envoy gives each definition a new id for the
;; same metric). It also logs "conformance log: request" at INFO, "conformance warn"
;; at WARN and "conformance debug" at DEBUG with proxy_log, and reports
;; proxy_get_log_level as x-log-level.
(module
  (import "env" "proxy_define_metric"
    (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric"
    (func $increment (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric"
    (func $record (param i32 i64) (result i32)))
  (import "env" "proxy_get_metric"
    (func $get (param i32 i32) (result i32)))
  (import "env" "proxy_log"
    (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_log_level"
    (func $get_log_level (param i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $counter (mut i32) (i32.const 0))
  (global $gauge (mut i32) (i32.const 0))
  (global $hist (mut i32) (i32.const 0))
  (global $counter2 (mut i32) (i32.const 0))

  (data (i32.const 1024) "conformance_requests")      ;; 20
  (data (i32.const 1048) "conformance_level")         ;; 17
  (data (i32.const 1072) "conformance_sizes")         ;; 17
  (data (i32.const 1096) "x-metric-counter")          ;; 16
  (data (i32.const 1116) "x-metric-gauge")            ;; 14
  (data (i32.const 1132) "x-metric-hist-status")      ;; 20
  (data (i32.const 1176) "conformance log: request")  ;; 24
  (data (i32.const 1204) "conformance warn")          ;; 16
  (data (i32.const 1224) "x-metric-alias")            ;; 14
  (data (i32.const 1240) "x-log-level")               ;; 11
  (data (i32.const 1256) "conformance debug")         ;; 17

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
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const 1024) (i32.const 20) (i32.const 256)))
    (global.set $counter (i32.load (i32.const 256)))
    (drop (call $define (i32.const 1) (i32.const 1048) (i32.const 17) (i32.const 256)))
    (global.set $gauge (i32.load (i32.const 256)))
    (drop (call $define (i32.const 2) (i32.const 1072) (i32.const 17) (i32.const 256)))
    (global.set $hist (i32.load (i32.const 256)))
    (drop (call $define (i32.const 0) (i32.const 1024) (i32.const 20) (i32.const 256)))
    (global.set $counter2 (i32.load (i32.const 256)))
    (i32.const 1))

  (func $header_u64 (param $name i32) (param $len i32) (param $id i32)
    (if (i32.eqz (call $get (local.get $id) (i32.const 264)))
      (then (drop (call $add (i32.const 0) (local.get $name) (local.get $len) (i32.const 400)
                             (call $itoa (i32.wrap_i64 (i64.load (i32.const 264))) (i32.const 400)))))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $increment (global.get $counter) (i64.const 1)))
    (drop (call $get (global.get $counter) (i32.const 264)))
    (drop (call $record (global.get $gauge) (i64.mul (i64.load (i32.const 264)) (i64.const 10))))
    (drop (call $record (global.get $hist) (i64.const 5)))
    (call $header_u64 (i32.const 1096) (i32.const 16) (global.get $counter))
    (call $header_u64 (i32.const 1116) (i32.const 14) (global.get $gauge))
    (call $header_u64 (i32.const 1224) (i32.const 14) (global.get $counter2))
    (i32.store8 (i32.const 300) (i32.add (i32.const 48) (call $get (global.get $hist) (i32.const 264))))
    (drop (call $add (i32.const 0) (i32.const 1132) (i32.const 20) (i32.const 300) (i32.const 1)))
    (if (i32.eqz (call $get_log_level (i32.const 304)))
      (then (drop (call $add (i32.const 0) (i32.const 1240) (i32.const 11) (i32.const 440)
                             (call $itoa (i32.load (i32.const 304)) (i32.const 440))))))
    (drop (call $log (i32.const 2) (i32.const 1176) (i32.const 24)))
    (drop (call $log (i32.const 3) (i32.const 1204) (i32.const 16)))
    (drop (call $log (i32.const 1) (i32.const 1256) (i32.const 17)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
