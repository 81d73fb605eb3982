;; Callback order and context ids (ABI 0.2.1). Every callback appends an entry to a
;; trace kept in the VM's memory: V<root> vm_start, F<root> configure,
;; C<ctx>/<parent> context_create, H<ctx> request_headers, B<ctx> request_body,
;; R<ctx> response_headers, S<ctx> response_body, L<ctx> log, D<ctx> done,
;; X<ctx> delete. With a non-empty plugin configuration the body callbacks are traced
;; too: B<ctx>:<body_size>:<end_of_stream> request_body, S<ctx>:... response_body.
;; Each request gets x-trace: the whole trace so far.
(module
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $end (mut i32) (i32.const 16384))   ;; the trace grows from 16384
  (global $bodies (mut i32) (i32.const 0))     ;; trace body callbacks?

  (data (i32.const 1024) "x-trace")   ;; 7

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
  (func $entry (param $letter i32) (param $ctx i32)
    (if (i32.gt_u (global.get $end) (i32.const 16384))
      (then (i32.store8 (global.get $end) (i32.const 32))
            (global.set $end (i32.add (global.get $end) (i32.const 1)))))
    (i32.store8 (global.get $end) (local.get $letter))
    (global.set $end (i32.add (global.get $end)
      (i32.add (i32.const 1) (call $itoa (local.get $ctx) (i32.add (global.get $end) (i32.const 1)))))))

  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (call $entry (i32.const 67) (local.get $ctx))
    (i32.store8 (global.get $end) (i32.const 47))
    (global.set $end (i32.add (global.get $end)
      (i32.add (i32.const 1) (call $itoa (local.get $parent) (i32.add (global.get $end) (i32.const 1)))))))
  (func (export "proxy_on_vm_start") (param $root i32) (param i32) (result i32)
    (call $entry (i32.const 86) (local.get $root)) (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (global.set $bodies (i32.ne (local.get $size) (i32.const 0)))
    (call $entry (i32.const 70) (local.get $root)) (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (call $entry (i32.const 72) (local.get $ctx))
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 7) (i32.const 16384)
                      (i32.sub (global.get $end) (i32.const 16384))))
    (i32.const 0))
  ;; append ":<size>:<eos>" to the last entry
  (func $body_args (param $size i32) (param $eos i32)
    (i32.store8 (global.get $end) (i32.const 58))
    (global.set $end (i32.add (global.get $end)
      (i32.add (i32.const 1) (call $itoa (local.get $size) (i32.add (global.get $end) (i32.const 1))))))
    (i32.store8 (global.get $end) (i32.const 58))
    (global.set $end (i32.add (global.get $end)
      (i32.add (i32.const 1) (call $itoa (local.get $eos) (i32.add (global.get $end) (i32.const 1)))))))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (global.get $bodies) (then
      (call $entry (i32.const 66) (local.get $ctx))
      (call $body_args (local.get $size) (local.get $eos))))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param i32 i32) (result i32)
    (call $entry (i32.const 82) (local.get $ctx)) (i32.const 0))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (global.get $bodies) (then
      (call $entry (i32.const 83) (local.get $ctx))
      (call $body_args (local.get $size) (local.get $eos))))
    (i32.const 0))
  (func (export "proxy_on_log") (param $ctx i32)
    (call $entry (i32.const 76) (local.get $ctx)))
  (func (export "proxy_on_done") (param $ctx i32) (result i32)
    (call $entry (i32.const 68) (local.get $ctx)) (i32.const 1))
  (func (export "proxy_on_delete") (param $ctx i32)
    (call $entry (i32.const 88) (local.get $ctx)))
)
