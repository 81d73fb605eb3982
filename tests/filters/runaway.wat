;; Runaway guests (ABI 0.2.1). In on_request_headers a request whose :path starts with
;; /loop spins forever; one starting with /bomb grows memory 16 pages (1 MiB) at a time
;; until memory.grow fails, then traps; one starting with /recurse recurses without end
;; until the call stack is exhausted. Any other request gets x-runaway-filter: alive.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 1024) ":path")             ;; 5
  (data (i32.const 1032) "/loop")             ;; 5
  (data (i32.const 1040) "/bomb")             ;; 5
  (data (i32.const 1048) "x-runaway-filter")  ;; 16
  (data (i32.const 1072) "alive")             ;; 5
  (data (i32.const 1080) "/recurse")          ;; 8

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
  (func $deep (param $n i32) (result i32)
    (i32.add (call $deep (i32.add (local.get $n) (i32.const 1))) (local.get $n)))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $ptr i32) (local $size i32)
    (if (i32.eqz (call $get_hdr (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
      (then
        (local.set $ptr (i32.load (i32.const 256)))
        (local.set $size (i32.load (i32.const 260)))
        (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1032) (i32.const 5))
          (then (loop $forever (br $forever))))
        (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1040) (i32.const 5))
          (then
            (loop $grow
              (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
            unreachable))
        (if (call $starts_with (local.get $ptr) (local.get $size) (i32.const 1080) (i32.const 8))
          (then (drop (call $deep (i32.const 0)))))))
    (drop (call $add (i32.const 0) (i32.const 1048) (i32.const 16) (i32.const 1072) (i32.const 5)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
