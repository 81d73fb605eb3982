;; gRPC callouts (ABI 0.2.1): proxy_grpc_call / _stream / _send / _cancel / _close and the
;; four gRPC callbacks, reported as a trace in the request header x-grpc-trace.
;;
;; The request :path picks what to do against cluster "grpc" (service test.Echo, see
;; tests/support/grpc_peer.py); every call carries the metadata x-md: v1:
;;   /unary       call Unary "hello", timeout 5000     /empty   call Empty
;;   /meta        call Meta, timeout 5000              /meta0   call Meta, timeout 0
;;   /fail        call Fail                            /slow    call Slow, timeout 300, on
;;                                                     cluster "silent" (never answers)
;;   /nomethod    call Nope                            /dead    call on cluster "dead"
;;   /nocluster   call on unknown cluster "nope"       /close-call  call Slow, then close
;;   /cancel-call call Slow, then cancel               /server  stream Server, send "go" (end)
;;   /bidi        stream Bidi, send "a", send "b" (end)
;;   /bidi-close  stream Bidi, send "a", then proxy_grpc_close
;;   /collect     stream Collect, send "x", "y", "" (end)
;;   /cancel-stream  stream Bidi, send "a", then cancel
;;   /stream-dead / /stream-nocluster   stream Bidi on cluster "dead" / "nope"
;;   /stream-nomethod / /stream-fail    stream Nope / Fail, send "go" (end): answered by
;;                the server with trailers only
;;   /tokens      send/cancel/close on tokens that do not exist: 1001, 1000, 1002, 1003
;;   /proto       call Meta with a serialized GrpcService (envoy_grpc cluster "grpc" and
;;                initial_metadata x-svc: s) in place of the cluster name
;;   /proto-nocluster  the same naming the unknown cluster "nope"
;;
;; Trace items: S<status of call/stream> k<token>; s<status> per send; x<status> cancel;
;; c<status> close; M<n>[keys] initial metadata; R<size>:<first 120 bytes> a message;
;; T<n>[keys] trailing metadata; C<status>:<proxy_get_status message> close (for a stream
;; then a<send on it> b<close it> b<close it again>, for a call b<close it>, from
;; proxy_on_grpc_close); and at the
;; end L<n>, how many callbacks so far came for calls already reported (late events).
;; A unary call is reported at its first message or its close, a stream at its close;
;; then the request continues (proxy_continue_stream).
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs"
    (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context"
    (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream"
    (func $continue (param i32) (result i32)))
  (import "env" "proxy_get_status"
    (func $get_status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_call"
    (func $grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_stream"
    (func $grpc_stream (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_send"
    (func $grpc_send (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_cancel"
    (func $grpc_cancel (param i32) (result i32)))
  (import "env" "proxy_grpc_close"
    (func $grpc_close (param i32) (result i32)))
  (memory (export "memory") 8)
  (global $heap (mut i32) (i32.const 262144))
  (global $tr (mut i32) (i32.const 129024))   ;; current trace: u32 length, then bytes
  (global $tok (mut i32) (i32.const 0))
  (global $late (mut i32) (i32.const 0))

  ;; strings, one per 32 bytes from 1024
  (data (i32.const 1024) ":path")
  (data (i32.const 1056) "grpc")
  (data (i32.const 1088) "test.Echo")
  (data (i32.const 1120) "Unary")
  (data (i32.const 1152) "Meta")
  (data (i32.const 1184) "Fail")
  (data (i32.const 1216) "Slow")
  (data (i32.const 1248) "Nope")
  (data (i32.const 1280) "nope")
  (data (i32.const 1312) "dead")
  (data (i32.const 1344) "Server")
  (data (i32.const 1376) "Bidi")
  (data (i32.const 1408) "Collect")
  (data (i32.const 1440) "hello")
  (data (i32.const 1472) "x-grpc-trace")
  (data (i32.const 1504) "/unary")
  (data (i32.const 1536) "/meta")
  (data (i32.const 1568) "/meta0")
  (data (i32.const 1600) "/fail")
  (data (i32.const 1632) "/slow")
  (data (i32.const 1664) "/nomethod")
  (data (i32.const 1696) "/nocluster")
  (data (i32.const 1728) "/dead")
  (data (i32.const 1760) "/server")
  (data (i32.const 1792) "/bidi")
  (data (i32.const 1824) "/bidi-close")
  (data (i32.const 1856) "/collect")
  (data (i32.const 1888) "/cancel-call")
  (data (i32.const 1920) "/cancel-stream")
  (data (i32.const 1952) "/stream-dead")
  (data (i32.const 1984) "/stream-nocluster")
  (data (i32.const 2016) "/tokens")
  (data (i32.const 2048) "go")
  (data (i32.const 2080) "abxy")
  (data (i32.const 2112) "Empty")
  (data (i32.const 2144) "/empty")
  (data (i32.const 2176) "/close-call")
  (data (i32.const 2208) "/proto")
  (data (i32.const 2272) "silent")
  (data (i32.const 2304) "/stream-nomethod")
  (data (i32.const 2336) "/stream-fail")
  (data (i32.const 2240) "/proto-nocluster")
  ;; GrpcService{envoy_grpc{cluster_name: "grpc"}, initial_metadata: [{x-svc: s}]} (20 bytes)
  (data (i32.const 2400) "\0a\06\0a\04grpc\2a\0a\0a\05x-svc\12\01s")
  ;; GrpcService{envoy_grpc{cluster_name: "nope"}} (8 bytes)
  (data (i32.const 2432) "\0a\06\0a\04nope")
  ;; metadata: x-md: v1 (20 bytes)
  (data (i32.const 2368) "\01\00\00\00" "\04\00\00\00\02\00\00\00" "x-md\00v1\00")
  ;; per token slot (token & 63): context id at 8192, finished flag at 8448;
  ;; trace at 131072 + slot * 2048; the trace of a request whose call never started at 129024

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
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))

  ;; --- trace helpers ---------------------------------------------------------------
  (func $slot (param $token i32) (result i32)
    (i32.shl (i32.and (local.get $token) (i32.const 63)) (i32.const 2)))
  (func $use (param $token i32)
    (global.set $tr (i32.add (i32.const 131072)
      (i32.mul (i32.and (local.get $token) (i32.const 63)) (i32.const 2048)))))
  (func $put (param $ptr i32) (param $len i32)
    (local $n i32)
    (local.set $n (i32.load (global.get $tr)))
    (if (i32.gt_u (i32.add (local.get $n) (local.get $len)) (i32.const 2000))
      (then (return)))
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
  ;; " <c><n>"
  (func $item (param $c i32) (param $v i32)
    (call $putc (i32.const 32)) (call $putc (local.get $c)) (call $putn (local.get $v)))
  ;; the keys of a header map, comma-separated, in [ ]
  (func $keys (param $map i32)
    (local $p i32) (local $n i32) (local $i i32) (local $data i32) (local $kl i32)
    (call $putc (i32.const 91))
    (if (i32.eqz (call $get_pairs (local.get $map) (i32.const 256) (i32.const 260)))
      (then
        (if (i32.ge_u (i32.load (i32.const 260)) (i32.const 4))
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
              (br $l)))))))
    (call $putc (i32.const 93)))
  ;; add the current trace (with L<late>) to the request headers of the current context
  (func $emit
    (call $item (i32.const 76) (global.get $late))
    (drop (call $add (i32.const 0) (i32.const 1472) (i32.const 12)
                     (i32.add (global.get $tr) (i32.const 4)) (i32.load (global.get $tr)))))

  (func $eq (param $ptr i32) (param $size i32) (param $lit i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $size) (local.get $len)) (then (return (i32.const 0))))
    (block $out (loop $l
      (br_if $out (i32.ge_u (local.get $i) (local.get $len)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                  (i32.load8_u (i32.add (local.get $lit) (local.get $i))))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 1))

  ;; --- calls -------------------------------------------------------------------------
  (func $call (param $cl i32) (param $cll i32) (param $m i32) (param $ml i32)
              (param $msg i32) (param $msgl i32) (param $timeout i32) (result i32)
    (call $grpc_call (local.get $cl) (local.get $cll) (i32.const 1088) (i32.const 9)
      (local.get $m) (local.get $ml) (i32.const 2368) (i32.const 20)
      (local.get $msg) (local.get $msgl) (local.get $timeout) (i32.const 264)))
  (func $stream (param $cl i32) (param $cll i32) (param $m i32) (param $ml i32) (result i32)
    (call $grpc_stream (local.get $cl) (local.get $cll) (i32.const 1088) (i32.const 9)
      (local.get $m) (local.get $ml) (i32.const 2368) (i32.const 20) (i32.const 264)))
  ;; after a call/stream was asked for: 1 = started (trace begun, context remembered);
  ;; 0 = refused (the trace "S<status>" was added to the request already)
  (func $start (param $rc i32) (param $ctx i32) (result i32)
    (local $token i32)
    (if (local.get $rc)
      (then
        (global.set $tr (i32.const 129024))
        (i32.store (global.get $tr) (i32.const 0))
        (call $putc (i32.const 83)) (call $putn (local.get $rc))
        (call $emit)
        (return (i32.const 0))))
    (local.set $token (i32.load (i32.const 264)))
    (global.set $tok (local.get $token))
    (call $use (local.get $token))
    (i32.store (global.get $tr) (i32.const 0))
    (call $putc (i32.const 83)) (call $putn (i32.const 0))
    (call $item (i32.const 107) (local.get $token))
    (i32.store (i32.add (i32.const 8192) (call $slot (local.get $token))) (local.get $ctx))
    (i32.store (i32.add (i32.const 8448) (call $slot (local.get $token))) (i32.const 0))
    (i32.const 1))
  (func $send (param $msg i32) (param $len i32) (param $eos i32)
    (call $item (i32.const 115) (call $grpc_send (global.get $tok) (local.get $msg)
                                                 (local.get $len) (local.get $eos))))
  ;; report now, from the request's own callback
  (func $done_here
    (i32.store (i32.add (i32.const 8448) (call $slot (global.get $tok))) (i32.const 1))
    (call $emit))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $p i32) (local $len i32)
    (if (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260))
      (then (return (i32.const 0))))
    (local.set $p (i32.load (i32.const 256)))
    (local.set $len (i32.load (i32.const 260)))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1504) (i32.const 6))   ;; /unary
      (then (return (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 1120)
        (i32.const 5) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 2144) (i32.const 6))   ;; /empty
      (then (return (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 2112)
        (i32.const 5) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1536) (i32.const 5))   ;; /meta
      (then (return (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 1152)
        (i32.const 4) (i32.const 1440) (i32.const 0) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1568) (i32.const 6))   ;; /meta0
      (then (return (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 1152)
        (i32.const 4) (i32.const 1440) (i32.const 0) (i32.const 0)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1600) (i32.const 5))   ;; /fail
      (then (return (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 1184)
        (i32.const 4) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1632) (i32.const 5))   ;; /slow
      (then (return (call $start (call $call (i32.const 2272) (i32.const 6) (i32.const 1216)
        (i32.const 4) (i32.const 1440) (i32.const 5) (i32.const 300)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 2208) (i32.const 6))   ;; /proto
      (then (return (call $start (call $call (i32.const 2400) (i32.const 20) (i32.const 1152)
        (i32.const 4) (i32.const 1440) (i32.const 0) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 2240) (i32.const 16))  ;; /proto-nocluster
      (then (return (call $start (call $call (i32.const 2432) (i32.const 8) (i32.const 1152)
        (i32.const 4) (i32.const 1440) (i32.const 0) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1664) (i32.const 9))   ;; /nomethod
      (then (return (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 1248)
        (i32.const 4) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1696) (i32.const 10))  ;; /nocluster
      (then (return (call $start (call $call (i32.const 1280) (i32.const 4) (i32.const 1120)
        (i32.const 5) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1728) (i32.const 5))   ;; /dead
      (then (return (call $start (call $call (i32.const 1312) (i32.const 4) (i32.const 1120)
        (i32.const 5) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1888) (i32.const 12))  ;; /cancel-call
      (then
        (if (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 1216)
              (i32.const 4) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx))
          (then
            (call $item (i32.const 120) (call $grpc_cancel (global.get $tok)))
            (call $item (i32.const 120) (call $grpc_cancel (global.get $tok)))
            (call $done_here)))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 2176) (i32.const 11))  ;; /close-call
      (then
        (if (call $start (call $call (i32.const 1056) (i32.const 4) (i32.const 1216)
              (i32.const 4) (i32.const 1440) (i32.const 5) (i32.const 5000)) (local.get $ctx))
          (then
            (call $item (i32.const 99) (call $grpc_close (global.get $tok)))
            (call $item (i32.const 99) (call $grpc_close (global.get $tok)))
            (call $done_here)))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1760) (i32.const 7))   ;; /server
      (then
        (if (call $start (call $stream (i32.const 1056) (i32.const 4) (i32.const 1344)
              (i32.const 6)) (local.get $ctx))
          (then (call $send (i32.const 2048) (i32.const 2) (i32.const 1)) (return (i32.const 1))))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1792) (i32.const 5))   ;; /bidi
      (then
        (if (call $start (call $stream (i32.const 1056) (i32.const 4) (i32.const 1376)
              (i32.const 4)) (local.get $ctx))
          (then
            (call $send (i32.const 2080) (i32.const 1) (i32.const 0))
            (call $send (i32.const 2081) (i32.const 1) (i32.const 1))
            (return (i32.const 1))))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1824) (i32.const 11))  ;; /bidi-close
      (then
        (if (call $start (call $stream (i32.const 1056) (i32.const 4) (i32.const 1376)
              (i32.const 4)) (local.get $ctx))
          (then
            (call $send (i32.const 2080) (i32.const 1) (i32.const 0))
            (call $item (i32.const 99) (call $grpc_close (global.get $tok)))
            (call $send (i32.const 2081) (i32.const 1) (i32.const 0))
            (return (i32.const 1))))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1856) (i32.const 8))   ;; /collect
      (then
        (if (call $start (call $stream (i32.const 1056) (i32.const 4) (i32.const 1408)
              (i32.const 7)) (local.get $ctx))
          (then
            (call $send (i32.const 2082) (i32.const 1) (i32.const 0))
            (call $send (i32.const 2083) (i32.const 1) (i32.const 0))
            (call $send (i32.const 2083) (i32.const 0) (i32.const 1))
            (return (i32.const 1))))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1920) (i32.const 14))  ;; /cancel-stream
      (then
        (if (call $start (call $stream (i32.const 1056) (i32.const 4) (i32.const 1376)
              (i32.const 4)) (local.get $ctx))
          (then
            (call $send (i32.const 2080) (i32.const 1) (i32.const 0))
            (call $item (i32.const 120) (call $grpc_cancel (global.get $tok)))
            (call $item (i32.const 120) (call $grpc_cancel (global.get $tok)))
            (call $send (i32.const 2081) (i32.const 1) (i32.const 0))
            (call $done_here)))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 2304) (i32.const 16))  ;; /stream-nomethod
      (then
        (if (call $start (call $stream (i32.const 1056) (i32.const 4) (i32.const 1248)
              (i32.const 4)) (local.get $ctx))
          (then (call $send (i32.const 2048) (i32.const 2) (i32.const 1)) (return (i32.const 1))))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 2336) (i32.const 12))  ;; /stream-fail
      (then
        (if (call $start (call $stream (i32.const 1056) (i32.const 4) (i32.const 1184)
              (i32.const 4)) (local.get $ctx))
          (then (call $send (i32.const 2048) (i32.const 2) (i32.const 1)) (return (i32.const 1))))
        (return (i32.const 0))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1952) (i32.const 12))  ;; /stream-dead
      (then (return (call $start (call $stream (i32.const 1312) (i32.const 4) (i32.const 1376)
        (i32.const 4)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 1984) (i32.const 17))  ;; /stream-nocluster
      (then (return (call $start (call $stream (i32.const 1280) (i32.const 4) (i32.const 1376)
        (i32.const 4)) (local.get $ctx)))))
    (if (call $eq (local.get $p) (local.get $len) (i32.const 2016) (i32.const 7))   ;; /tokens
      (then
        (global.set $tr (i32.const 129024))
        (i32.store (global.get $tr) (i32.const 0))
        (call $putc (i32.const 84))
        (call $item (i32.const 115) (call $grpc_send (i32.const 1001) (i32.const 2048) (i32.const 2) (i32.const 0)))
        (call $item (i32.const 120) (call $grpc_cancel (i32.const 1001)))
        (call $item (i32.const 99) (call $grpc_close (i32.const 1001)))
        (call $item (i32.const 115) (call $grpc_send (i32.const 1000) (i32.const 2048) (i32.const 2) (i32.const 0)))
        (call $item (i32.const 120) (call $grpc_cancel (i32.const 1000)))
        (call $item (i32.const 99) (call $grpc_close (i32.const 1000)))
        (call $item (i32.const 115) (call $grpc_send (i32.const 1002) (i32.const 2048) (i32.const 2) (i32.const 0)))
        (call $item (i32.const 120) (call $grpc_cancel (i32.const 1002)))
        (call $item (i32.const 99) (call $grpc_close (i32.const 1002)))
        (call $item (i32.const 115) (call $grpc_send (i32.const 1003) (i32.const 2048) (i32.const 2) (i32.const 0)))
        (call $item (i32.const 120) (call $grpc_cancel (i32.const 1003)))
        (call $item (i32.const 99) (call $grpc_close (i32.const 1003)))
        (call $emit)
        (return (i32.const 0))))
    (i32.const 0))

  ;; --- callbacks (on the root context) ---------------------------------------------------
  ;; 1 when the token was reported already (the event is counted as late)
  (func $late_event (param $token i32) (result i32)
    (if (i32.load (i32.add (i32.const 8448) (call $slot (local.get $token))))
      (then (global.set $late (i32.add (global.get $late) (i32.const 1))) (return (i32.const 1))))
    (call $use (local.get $token))
    (i32.const 0))
  (func $finish (param $token i32)
    (i32.store (i32.add (i32.const 8448) (call $slot (local.get $token))) (i32.const 1))
    (drop (call $set_effective (i32.load (i32.add (i32.const 8192) (call $slot (local.get $token))))))
    (call $emit)
    (drop (call $continue (i32.const 0))))

  (func (export "proxy_on_grpc_receive_initial_metadata") (param $root i32) (param $token i32) (param $n i32)
    (if (call $late_event (local.get $token)) (then (return)))
    (call $item (i32.const 77) (local.get $n))
    (call $keys (i32.const 4)))
  (func (export "proxy_on_grpc_receive") (param $root i32) (param $token i32) (param $size i32)
    (local $rc i32)
    (if (call $late_event (local.get $token)) (then (return)))
    (call $item (i32.const 82) (local.get $size))
    (call $putc (i32.const 58))
    (local.set $rc (call $get_buf (i32.const 5) (i32.const 0) (i32.const 120) (i32.const 256) (i32.const 260)))
    (if (local.get $rc)
      (then (call $putc (i32.const 33)) (call $putn (local.get $rc)))
      (else (call $put (i32.load (i32.const 256)) (i32.load (i32.const 260)))))
    (if (i32.and (local.get $token) (i32.const 1)) (then (call $finish (local.get $token)))))
  (func (export "proxy_on_grpc_receive_trailing_metadata") (param $root i32) (param $token i32) (param $n i32)
    (if (call $late_event (local.get $token)) (then (return)))
    (call $item (i32.const 84) (local.get $n))
    (call $keys (i32.const 5)))
  (func (export "proxy_on_grpc_close") (param $root i32) (param $token i32) (param $status i32)
    (if (call $late_event (local.get $token)) (then (return)))
    (call $item (i32.const 67) (local.get $status))
    (call $putc (i32.const 58))
    (if (i32.eqz (call $get_status (i32.const 268) (i32.const 256) (i32.const 260)))
      (then (call $put (i32.load (i32.const 256)) (i32.load (i32.const 260)))))
    (if (i32.eq (i32.and (local.get $token) (i32.const 3)) (i32.const 2))
      (then   ;; a stream the peer closed: send on it, close it, close it again
        (call $item (i32.const 97) (call $grpc_send (local.get $token) (i32.const 2048) (i32.const 2) (i32.const 0)))
        (call $item (i32.const 98) (call $grpc_close (local.get $token)))
        (call $item (i32.const 98) (call $grpc_close (local.get $token))))
      (else   ;; a call that failed: close it from its own callback
        (call $item (i32.const 98) (call $grpc_close (local.get $token)))))
    (call $finish (local.get $token)))
)
