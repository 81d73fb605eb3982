;; Probes for where a host may depart from Envoy (ABI 0.2.1); every result is a status
;; code (or a value) written into a report.
;;
;; on_request_headers: the request header map as the filter first sees it, as request
;;   header x-p-keys "<key,key,...> n=<count> size=<map size> rid=<status>:<len of
;;   x-request-id>", and the stream probe (below) as request header x-p-rh.
;; on_request_body (end of stream): the request probe and the stream probe, kept and sent as response header
;;   x-p-rb.
;; on_response_headers: the request probe (below) then the stream probe, as response
;;   header x-p-sh.
;; on_response_body (end of stream) and on_log: the same, kept; the next request carries
;;   them as request headers x-prev-sb and x-prev-lg.
;;
;; With the plugin configuration "pause", on_request_headers returns Pause and the next
;; tick (every 20 ms) resumes the request with proxy_continue_stream.
;;
;; stream probe: "c<continue_stream 2,3,4> k<close_stream 2,3,4> s<get_buffer_status 0..9>
;;   b<get_buffer_bytes 0..9, start 0, 1 byte> w<set_buffer_bytes 2..9, prepend 'x'>",
;;   one digit per call (status + '0'; ':'=10, '<'=12).
;; request probe (the request, read after it went upstream): "v<status>=<value of
;;   x-foo> p<status>=<property request.headers.x-foo> q<status>=<property request.path>
;;   n<status>#<pairs count> z<status> a<add x-late> r<replace x-foo> d<remove x-foo>
;;   t<get value from the request trailers> e<status>=<x-foo after the edits>
;;   P<statuses of request.path, url_path, host, scheme, method, headers, referer,
;;   useragent, time, id, protocol, query, duration, size, total_size, headers_bytes>
;;   h<status>=<response :status> y<response map size> j<add to the response map>
;;   X<status>:<hex> of request.headers (its first 4 bytes, the count: Envoy's order of
;;   the entries is its own) / headers_bytes / size / total_size"
(module
  (import "env" "proxy_get_header_map_value" (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $get_size (param i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_status" (func $buf_status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_close_stream" (func $close (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_cfg (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 131072))
  (global $tr (mut i32) (i32.const 40000))       ;; report being written: u32 len, bytes
  (global $pause (mut i32) (i32.const 0))         ;; configuration "pause"
  (global $paused (mut i32) (i32.const 0))        ;; the context waiting for a tick

  (data (i32.const 1024) "x-foo")                   ;; 5
  (data (i32.const 1040) "x-late")                  ;; 6
  (data (i32.const 1056) "12x")
  (data (i32.const 1072) "request\00path")          ;; 12
  (data (i32.const 1088) "request\00headers\00x-foo")  ;; 21
  (data (i32.const 1120) "x-p-keys")                ;; 8
  (data (i32.const 1136) "x-p-rh")                  ;; 6
  (data (i32.const 1152) "x-p-rb")                  ;; 6
  (data (i32.const 1168) "x-p-sh")                  ;; 6
  (data (i32.const 1184) "x-prev-sb")               ;; 9
  (data (i32.const 1200) "x-prev-lg")               ;; 9
  (data (i32.const 1216) "x-request-id")            ;; 12
  (data (i32.const 1232) ":status")                 ;; 7
  (data (i32.const 1248) "0123456789abcdef")
  (data (i32.const 1280) "request\00path")
  (data (i32.const 1312) "request\00url_path")
  (data (i32.const 1344) "request\00host")
  (data (i32.const 1376) "request\00scheme")
  (data (i32.const 1408) "request\00method")
  (data (i32.const 1440) "request\00headers")
  (data (i32.const 1472) "request\00referer")
  (data (i32.const 1504) "request\00useragent")
  (data (i32.const 1536) "request\00time")
  (data (i32.const 1568) "request\00id")
  (data (i32.const 1600) "request\00protocol")
  (data (i32.const 1632) "request\00query")
  (data (i32.const 1664) "request\00duration")
  (data (i32.const 1696) "request\00size")
  (data (i32.const 1728) "request\00total_size")
  (data (i32.const 1760) "request\00headers_bytes")
  ;; kept reports: request body at 44000, response body at 48000, log at 52000

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
  ;; configuration "pause": on_request_headers pauses, and the next tick resumes it
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (i32.eqz (call $get_cfg (i32.const 7) (i32.const 0) (i32.const 1) (i32.const 256) (i32.const 260)))
      (then (if (i32.load (i32.const 260))
        (then (global.set $pause (i32.eq (i32.load8_u (i32.load (i32.const 256))) (i32.const 112)))))))
    (if (global.get $pause) (then (drop (call $tick (i32.const 20)))))
    (i32.const 1))
  (func (export "proxy_on_tick") (param $root i32)
    (if (global.get $paused)
      (then
        (drop (call $set_effective (global.get $paused)))
        (global.set $paused (i32.const 0))
        (drop (call $continue (i32.const 0))))))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))

  ;; --- report helpers ----------------------------------------------------------------
  (func $start (param $at i32)
    (global.set $tr (local.get $at))
    (i32.store (local.get $at) (i32.const 0)))
  (func $put (param $ptr i32) (param $len i32)
    (local $n i32)
    (local.set $n (i32.load (global.get $tr)))
    (if (i32.gt_u (i32.add (local.get $n) (local.get $len)) (i32.const 3500)) (then (return)))
    (memory.copy (i32.add (i32.add (global.get $tr) (i32.const 4)) (local.get $n))
                 (local.get $ptr) (local.get $len))
    (i32.store (global.get $tr) (i32.add (local.get $n) (local.get $len))))
  (func $putc (param $c i32)
    (i32.store8 (i32.const 512) (local.get $c))
    (call $put (i32.const 512) (i32.const 1)))
  (func $putn (param $v i32)
    (if (i32.ge_u (local.get $v) (i32.const 10))
      (then (call $putn (i32.div_u (local.get $v) (i32.const 10)))))
    (call $putc (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))
  (func $code (param $st i32) (call $putc (i32.add (i32.const 48) (local.get $st))))
  (func $tag (param $c i32) (call $putc (i32.const 32)) (call $putc (local.get $c)))
  ;; status, and "=<value at [256]/[260]>" when it is OK
  (func $valued (param $st i32)
    (call $code (local.get $st))
    (if (i32.eqz (local.get $st))
      (then (call $putc (i32.const 61))
            (call $put (i32.load (i32.const 256)) (i32.load (i32.const 260))))))
  ;; status, and ":<hex of the value>" (at most $max bytes) when it is OK
  (func $hexed (param $st i32) (param $max i32)
    (local $p i32) (local $end i32) (local $b i32)
    (call $code (local.get $st))
    (if (i32.eqz (local.get $st))
      (then
        (call $putc (i32.const 58))
        (local.set $p (i32.load (i32.const 256)))
        (local.set $end (i32.add (local.get $p) (i32.load (i32.const 260))))
        (if (i32.gt_u (i32.load (i32.const 260)) (local.get $max))
          (then (local.set $end (i32.add (local.get $p) (local.get $max)))))
        (block $out (loop $l
          (br_if $out (i32.ge_u (local.get $p) (local.get $end)))
          (local.set $b (i32.load8_u (local.get $p)))
          (call $putc (i32.load8_u (i32.add (i32.const 1248) (i32.shr_u (local.get $b) (i32.const 4)))))
          (call $putc (i32.load8_u (i32.add (i32.const 1248) (i32.and (local.get $b) (i32.const 15)))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $l))))))
  (func $emit (param $map i32) (param $name i32) (param $len i32) (param $report i32)
    (drop (call $add (local.get $map) (local.get $name) (local.get $len)
                     (i32.add (local.get $report) (i32.const 4)) (i32.load (local.get $report)))))

  ;; --- probes --------------------------------------------------------------------------
  (func $stream_probe
    (local $i i32)
    (call $tag (i32.const 99))
    (local.set $i (i32.const 2))
    (block $o1 (loop $l1 (br_if $o1 (i32.gt_u (local.get $i) (i32.const 4)))
      (call $code (call $continue (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l1)))
    (call $tag (i32.const 107))
    (local.set $i (i32.const 2))
    (block $o2 (loop $l2 (br_if $o2 (i32.gt_u (local.get $i) (i32.const 4)))
      (call $code (call $close (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l2)))
    (call $tag (i32.const 115))
    (local.set $i (i32.const 0))
    (block $o3 (loop $l3 (br_if $o3 (i32.gt_u (local.get $i) (i32.const 9)))
      (call $code (call $buf_status (local.get $i) (i32.const 264) (i32.const 268)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l3)))
    (call $tag (i32.const 98))
    (local.set $i (i32.const 0))
    (block $o4 (loop $l4 (br_if $o4 (i32.gt_u (local.get $i) (i32.const 9)))
      (call $code (call $get_buf (local.get $i) (i32.const 0) (i32.const 1) (i32.const 256) (i32.const 260)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l4)))
    (call $tag (i32.const 119))
    (local.set $i (i32.const 2))
    (block $o5 (loop $l5 (br_if $o5 (i32.gt_u (local.get $i) (i32.const 9)))
      (call $code (call $set_buf (local.get $i) (i32.const 0) (i32.const 0) (i32.const 1058) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l5))))

  (func $request_probe
    (local $st i32)
    (call $tag (i32.const 118))
    (call $valued (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
    (call $tag (i32.const 112))
    (call $valued (call $get_prop (i32.const 1088) (i32.const 21) (i32.const 256) (i32.const 260)))
    (call $tag (i32.const 113))
    (call $valued (call $get_prop (i32.const 1072) (i32.const 12) (i32.const 256) (i32.const 260)))
    (call $tag (i32.const 110))
    (local.set $st (call $get_pairs (i32.const 0) (i32.const 256) (i32.const 260)))
    (call $code (local.get $st))
    (call $putc (i32.const 35))
    (if (i32.and (i32.eqz (local.get $st)) (i32.ge_u (i32.load (i32.const 260)) (i32.const 4)))
      (then (call $putn (i32.load (i32.load (i32.const 256)))))
      (else (call $putn (i32.const 0))))
    (call $tag (i32.const 122))
    (call $code (call $get_size (i32.const 0) (i32.const 264)))
    (call $tag (i32.const 97))
    (call $code (call $add (i32.const 0) (i32.const 1040) (i32.const 6) (i32.const 1056) (i32.const 1)))
    (call $tag (i32.const 114))
    (call $code (call $replace (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1057) (i32.const 1)))
    (call $tag (i32.const 100))
    (call $code (call $remove (i32.const 0) (i32.const 1024) (i32.const 5)))
    (call $tag (i32.const 116))
    (call $code (call $get_hdr (i32.const 1) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
    (call $tag (i32.const 101))
    (call $valued (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
    (call $props_probe)
    (call $tag (i32.const 104))
    (call $valued (call $get_hdr (i32.const 2) (i32.const 1232) (i32.const 7) (i32.const 256) (i32.const 260)))
    (call $tag (i32.const 121))
    (call $code (call $get_size (i32.const 2) (i32.const 264)))
    (call $tag (i32.const 106))
    (call $code (call $add (i32.const 2) (i32.const 1040) (i32.const 6) (i32.const 1056) (i32.const 1)))
    (call $tag (i32.const 88))
    (call $hexed (call $get_prop (i32.const 1440) (i32.const 15) (i32.const 256) (i32.const 260)) (i32.const 4))
    (call $putc (i32.const 47))
    (call $hexed (call $get_prop (i32.const 1760) (i32.const 21) (i32.const 256) (i32.const 260)) (i32.const 8))
    (call $putc (i32.const 47))
    (call $hexed (call $get_prop (i32.const 1696) (i32.const 12) (i32.const 256) (i32.const 260)) (i32.const 8))
    (call $putc (i32.const 47))
    (call $hexed (call $get_prop (i32.const 1728) (i32.const 18) (i32.const 256) (i32.const 260)) (i32.const 8)))

  ;; statuses of request.{path,url_path,host,scheme,method,headers,referer,useragent,time,id,protocol,query,duration,size,total_size,headers_bytes}
  (func $props_probe
    (call $tag (i32.const 80))
    (call $code (call $get_prop (i32.const 1280) (i32.const 12) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1312) (i32.const 16) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1344) (i32.const 12) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1376) (i32.const 14) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1408) (i32.const 14) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1440) (i32.const 15) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1472) (i32.const 15) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1504) (i32.const 17) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1536) (i32.const 12) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1568) (i32.const 10) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1600) (i32.const 16) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1632) (i32.const 13) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1664) (i32.const 16) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1696) (i32.const 12) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1728) (i32.const 18) (i32.const 256) (i32.const 260)))
    (call $code (call $get_prop (i32.const 1760) (i32.const 21) (i32.const 256) (i32.const 260))))

  ;; the request map's keys, count, byte size, and x-request-id's length
  (func $keys_probe
    (local $p i32) (local $n i32) (local $i i32) (local $data i32) (local $kl i32) (local $st i32)
    (if (i32.eqz (call $get_pairs (i32.const 0) (i32.const 256) (i32.const 260)))
      (then
        (local.set $p (i32.load (i32.const 256)))
        (local.set $n (i32.load (local.get $p)))
        (local.set $data (i32.add (i32.add (local.get $p) (i32.const 4))
                                  (i32.shl (local.get $n) (i32.const 3))))
        (block $out (loop $l
          (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $kl (i32.load (i32.add (i32.add (local.get $p) (i32.const 4))
                                            (i32.shl (local.get $i) (i32.const 3)))))
          (if (local.get $i) (then (call $putc (i32.const 44))))
          (call $put (local.get $data) (local.get $kl))
          (local.set $data (i32.add (i32.add (local.get $data) (local.get $kl))
            (i32.add (i32.const 2) (i32.load (i32.add (i32.add (local.get $p) (i32.const 8))
                                                      (i32.shl (local.get $i) (i32.const 3)))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))))
    (call $tag (i32.const 110)) (call $putc (i32.const 61)) (call $putn (local.get $n))
    (call $tag (i32.const 115)) (call $putc (i32.const 61))
    (drop (call $get_size (i32.const 0) (i32.const 264)))
    (call $putn (i32.load (i32.const 264)))
    (call $tag (i32.const 114)) (call $putc (i32.const 61))
    (local.set $st (call $get_hdr (i32.const 0) (i32.const 1216) (i32.const 12) (i32.const 256) (i32.const 260)))
    (call $code (local.get $st))
    (call $putc (i32.const 58))
    (if (i32.eqz (local.get $st)) (then (call $putn (i32.load (i32.const 260))))))

  ;; --- callbacks -----------------------------------------------------------------------
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (call $start (i32.const 40000))
    (call $keys_probe)
    (call $emit (i32.const 0) (i32.const 1120) (i32.const 8) (i32.const 40000))
    (call $start (i32.const 40000))
    (call $stream_probe)
    (call $emit (i32.const 0) (i32.const 1136) (i32.const 6) (i32.const 40000))
    (if (i32.load (i32.const 48000))
      (then (call $emit (i32.const 0) (i32.const 1184) (i32.const 9) (i32.const 48000))))
    (if (i32.load (i32.const 52000))
      (then (call $emit (i32.const 0) (i32.const 1200) (i32.const 9) (i32.const 52000))))
    (i32.store (i32.const 44000) (i32.const 0))
    (i32.store (i32.const 48000) (i32.const 0))
    (i32.store (i32.const 52000) (i32.const 0))
    (if (global.get $pause)
      (then (global.set $paused (local.get $ctx)) (return (i32.const 1))))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (local.get $eos)
      (then (call $start (i32.const 44000)) (call $request_probe) (call $stream_probe)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.load (i32.const 44000))
      (then (call $emit (i32.const 2) (i32.const 1152) (i32.const 6) (i32.const 44000))))
    (call $start (i32.const 40000))
    (call $request_probe)
    (call $stream_probe)
    (call $emit (i32.const 2) (i32.const 1168) (i32.const 6) (i32.const 40000))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (local.get $eos)
      (then (call $start (i32.const 48000)) (call $request_probe) (call $stream_probe)))
    (i32.const 0))
  (func (export "proxy_on_log") (param $ctx i32)
    (call $start (i32.const 52000))
    (call $request_probe)
    (call $stream_probe))
)
