;; Properties read in proxy_on_log, after the stream completed (ABI 0.2.1). on_log
;; writes a report "name=value;..." into the VM's memory; the next request carries it as
;; x-last-log. Integers are little-endian int64 shown as hex; a failed lookup shows
;; "status:<code>"; upstream.address is cut at ':' (its port differs between runs).
;; The plugin configuration adds more: "grpc" adds response.grpc_status; "extra" adds
;; xds.route_name, xds.filter_chain_name, upstream.num_endpoints, response.trailers,
;; upstream.transport_failure_reason, metadata, filter_state, response.headers_bytes and
;; response.total_size.
(module
  (import "env" "proxy_get_property"
    (func $get_prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $out (mut i32) (i32.const 16384))     ;; report being written
  (global $report_len (mut i32) (i32.const 0))  ;; last complete report, at 24576
  (global $grpc (mut i32) (i32.const 0))
  (global $extra (mut i32) (i32.const 0))

  (data (i32.const 1024) "x-last-log")                ;; 10
  (data (i32.const 1040) "0123456789abcdef")
  (data (i32.const 1056) "status:")                   ;; 7
  (data (i32.const 2048) "response\00code")           ;; 13
  (data (i32.const 2080) "response\00code_details")   ;; 21
  (data (i32.const 2112) "response\00flags")          ;; 14
  (data (i32.const 2144) "response\00size")           ;; 13
  (data (i32.const 2176) "request\00size")            ;; 12
  (data (i32.const 2208) "upstream\00address")        ;; 16
  (data (i32.const 2240) "request\00method")          ;; 14
  (data (i32.const 2272) "response\00grpc_status")    ;; 20
  (data (i32.const 2304) "xds\00route_name")              ;; 14
  (data (i32.const 2336) "xds\00filter_chain_name")       ;; 21
  (data (i32.const 2368) "upstream\00num_endpoints")      ;; 22
  (data (i32.const 2400) "response\00trailers")           ;; 17
  (data (i32.const 2432) "upstream\00transport_failure_reason")  ;; 33
  (data (i32.const 2480) "metadata")                      ;; 8
  (data (i32.const 2496) "filter_state")                  ;; 12
  (data (i32.const 2512) "response\00headers_bytes")      ;; 22
  (data (i32.const 2544) "response\00total_size")         ;; 19

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
  (func $byte (param $b i32)
    (i32.store8 (global.get $out) (local.get $b))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))

  ;; append "<path with NUL shown as '.'>=<value>;" ; mode 0 raw, 1 hex, 2 cut at ':'
  (func $prop (param $path i32) (param $len i32) (param $mode i32)
    (local $i i32) (local $st i32) (local $ptr i32) (local $size i32) (local $b i32)
    (block $out (loop $l
      (br_if $out (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $b (i32.load8_u (i32.add (local.get $path) (local.get $i))))
      (call $byte (select (i32.const 46) (local.get $b) (i32.eqz (local.get $b))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $byte (i32.const 61))
    (local.set $st (call $get_prop (local.get $path) (local.get $len) (i32.const 256) (i32.const 260)))
    (if (local.get $st)
      (then
        (memory.copy (global.get $out) (i32.const 1056) (i32.const 7))
        (global.set $out (i32.add (global.get $out) (i32.const 7)))
        (call $byte (i32.add (i32.const 48) (local.get $st))))
      (else
        (local.set $ptr (i32.load (i32.const 256)))
        (local.set $size (i32.load (i32.const 260)))
        (local.set $i (i32.const 0))
        (block $out (loop $l
          (br_if $out (i32.ge_u (local.get $i) (local.get $size)))
          (local.set $b (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
          (br_if $out (i32.and (i32.eq (local.get $mode) (i32.const 2)) (i32.eq (local.get $b) (i32.const 58))))
          (if (i32.eq (local.get $mode) (i32.const 1))
            (then
              (call $byte (i32.load8_u (i32.add (i32.const 1040) (i32.shr_u (local.get $b) (i32.const 4)))))
              (call $byte (i32.load8_u (i32.add (i32.const 1040) (i32.and (local.get $b) (i32.const 15))))))
            (else (call $byte (local.get $b))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))))
    (call $byte (i32.const 59)))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32) (param $size i32) (result i32)
    (local $first i32)
    (if (i32.eqz (call $get_buf (i32.const 7) (i32.const 0) (i32.const 1) (i32.const 256) (i32.const 260)))
      (then
        (if (i32.load (i32.const 260))
          (then (local.set $first (i32.load8_u (i32.load (i32.const 256))))))))
    (global.set $grpc (i32.eq (local.get $first) (i32.const 103)))    ;; "g..."
    (global.set $extra (i32.eq (local.get $first) (i32.const 101)))   ;; "e..."
    (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (global.get $report_len)
      (then (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 10)
                             (i32.const 24576) (global.get $report_len)))))
    (i32.const 0))

  (func (export "proxy_on_log") (param $ctx i32)
    (global.set $out (i32.const 16384))
    (call $prop (i32.const 2048) (i32.const 13) (i32.const 1))
    (call $prop (i32.const 2080) (i32.const 21) (i32.const 0))
    (call $prop (i32.const 2112) (i32.const 14) (i32.const 1))
    (call $prop (i32.const 2144) (i32.const 13) (i32.const 1))
    (call $prop (i32.const 2176) (i32.const 12) (i32.const 1))
    (call $prop (i32.const 2208) (i32.const 16) (i32.const 2))
    (call $prop (i32.const 2240) (i32.const 14) (i32.const 0))
    (if (global.get $grpc) (then (call $prop (i32.const 2272) (i32.const 20) (i32.const 1))))
    (if (global.get $extra)
      (then
        (call $prop (i32.const 2304) (i32.const 14) (i32.const 0))
        (call $prop (i32.const 2336) (i32.const 21) (i32.const 0))
        (call $prop (i32.const 2368) (i32.const 22) (i32.const 1))
        (call $prop (i32.const 2400) (i32.const 17) (i32.const 1))
        (call $prop (i32.const 2432) (i32.const 33) (i32.const 0))
        (call $prop (i32.const 2480) (i32.const 8) (i32.const 1))
        (call $prop (i32.const 2496) (i32.const 12) (i32.const 1))
        (call $prop (i32.const 2512) (i32.const 22) (i32.const 1))
        (call $prop (i32.const 2544) (i32.const 19) (i32.const 1))))
    (global.set $report_len (i32.sub (global.get $out) (i32.const 16384)))
    (memory.copy (i32.const 24576) (i32.const 16384) (global.get $report_len)))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
)
