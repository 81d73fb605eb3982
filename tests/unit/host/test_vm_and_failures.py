"""Loading, WASI, properties, ABI 0.1.0, failure policies, limits and hostile pointers."""

from __future__ import annotations

import struct

import pytest
import wasmtime
from wat import IMPORTS, build, module

from wasmetool.errors import WasmetoolError
from wasmetool.host import abi, engine
from wasmetool.host.config import Limits
from wasmetool.testing import HttpEmulator, TcpEmulator

REQ = {":method": "GET", ":path": "/p?x=1", ":authority": "example.com", ":scheme": "http"}


# ---------------------------------------------------------------- loading
def test_module_without_abi_marker_is_refused() -> None:
    code = wasmtime.wat2wasm('(module (memory (export "memory") 1))')
    with pytest.raises(WasmetoolError, match="proxy_abi_version"):
        HttpEmulator(code)


def test_unknown_and_mistyped_imports_are_named() -> None:
    code = module("", imports="""
      (import "env" "proxy_no_such_thing" (func (param i32)))
      (import "env" "proxy_log" (func (param i32 i32) (result i32)))
      (import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))""")
    with pytest.raises(WasmetoolError) as e:
        HttpEmulator(code)
    msg = str(e.value)
    assert "unknown import env.proxy_no_such_thing" in msg
    assert "mistyped import env.proxy_log" in msg
    assert "env.proxy_get_configuration (not available to ABI 0.2.1 modules)" in msg


def test_mistyped_export_and_missing_allocator_are_named() -> None:
    code = wasmtime.wat2wasm("""(module (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_0"))
      (func (export "proxy_on_request_headers") (param i32) (result i32) (i32.const 0)))""")
    with pytest.raises(WasmetoolError) as e:
        HttpEmulator(code)
    assert "missing export malloc or proxy_on_memory_allocate" in str(e.value)
    assert "mistyped export proxy_on_request_headers" in str(e.value)


def test_configure_returning_false_is_refused() -> None:
    code = build('(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))')
    with pytest.raises(WasmetoolError, match="configuration rejected"):
        HttpEmulator(code)


def test_compiled_module_cache_on_disk() -> None:
    code = build('(func (export "proxy_on_log") (param i32))')
    engine.forget_loaded_modules()
    _mod, sha, hit = engine.load_module(code)
    assert not hit and engine.cache_path(sha).is_file()
    engine.forget_loaded_modules()
    _mod, _sha, hit = engine.load_module(code)
    assert hit


# ---------------------------------------------------------------- start-up order, WASI
START = build("""
  (func (export "_initialize")
    (i32.store (i32.const 8192) (i32.const 16)) (i32.store (i32.const 8196) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 8192) (i32.const 1) (i32.const 8200))))
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (drop (call $environ_sizes (i32.const 8204) (i32.const 8208)))
    (drop (call $environ_get (i32.const 8300) (i32.const 8400)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 8300)) (i32.sub (i32.load (i32.const 8208)) (i32.const 1))))
    (i32.store (i32.const 8192) (i32.const 32)) (i32.store (i32.const 8196) (i32.const 4))
    (drop (call $fd_write (i32.const 2) (i32.const 8192) (i32.const 1) (i32.const 8200)))
    (i32.const 1))
""", uses=("fd_write", "environ_sizes", "environ_get", "log"), data={16: "hello\n", 32: "oops"})


def test_wasi_stdout_stderr_and_environment() -> None:
    with HttpEmulator(START, environment={"GREETING": "hi"}, name="w") as emu:
        got = [(r.plugin, r.level, r.context_id, r.message) for r in emu.logs]
        assert got == [("w", abi.INFO, 0, "hello"), ("w", abi.INFO, 1, "GREETING=hi"),
                       ("w", abi.ERROR, 1, "oops")]


PROPS = build("""
  (func $copy (param $path i32) (param $len i32) (param $hdr i32) (param $hlen i32)
    (if (i32.eqz (call $get_prop (local.get $path) (local.get $len) (i32.const 8192) (i32.const 8196)))
      (then (drop (call $add (i32.const 0) (local.get $hdr) (local.get $hlen)
                             (i32.load (i32.const 8192)) (i32.load (i32.const 8196)))))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $copy (i32.const 16) (i32.const 11) (i32.const 100) (i32.const 8))
    (call $copy (i32.const 32) (i32.const 12) (i32.const 112) (i32.const 6))
    (call $copy (i32.const 48) (i32.const 11) (i32.const 120) (i32.const 6))
    (drop (call $set_prop (i32.const 64) (i32.const 3) (i32.const 72) (i32.const 5)))
    (call $copy (i32.const 64) (i32.const 3) (i32.const 128) (i32.const 7))
    (i32.const 0))
""", uses=("get_prop", "set_prop", "add"),
    data={16: "plugin_name", 32: "request\0path", 48: "source\0port", 64: "foo", 72: "state",
          100: "x-plugin", 112: "x-path", 120: "x-port", 128: "x-state"})


def test_properties_with_envoy_encodings_and_filter_state() -> None:
    with HttpEmulator(PROPS, name="props") as emu:
        ex = emu.request(REQ)
        h = ex.forwarded_headers
        assert h["x-plugin"] == "props"
        assert h["x-path"] == "/p?x=1"
        raw_port = [v for k, v in h if k == b"x-port"][0]
        assert struct.unpack("<q", raw_port)[0] == 40000       # int → 8 bytes little-endian
        assert h["x-state"] == "state"
        assert ex.info.filter_state == {b"wasm.foo": b"state"}


V010 = build("""
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $get_cfg (i32.const 8192) (i32.const 8196)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 8192)) (i32.load (i32.const 8196))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32) (result i32)
    (i32.store8 (i32.const 8204)
      (i32.add (i32.const 48) (call $get_value (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 8192) (i32.const 8196))))
    (drop (call $add (i32.const 0) (i32.const 32) (i32.const 8) (i32.const 8204) (i32.const 1)))
    (i32.const 0))
""", uses=("get_value", "add", "get_cfg", "log"), data={16: "missing", 32: "x-status"},
    version="0_1_0")


def test_abi_0_1_0_two_param_headers_and_missing_header_ok() -> None:
    with HttpEmulator(V010, configuration="old-style") as emu:
        assert emu.host.all_vms[0].abi == "0_1_0"
        assert emu.log_messages() == ["old-style"]      # proxy_get_configuration
        ex = emu.request(REQ)
        assert ex.forwarded_headers["x-status"] == "0"


# ---------------------------------------------------------------- failures and limits
TRAP_ON_HEADER = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $get_value (i32.const 0) (i32.const 16) (i32.const 6) (i32.const 8192) (i32.const 8196)))
      (then unreachable))
    (drop (call $add (i32.const 0) (i32.const 32) (i32.const 6) (i32.const 48) (i32.const 3)))
    (i32.const 0))
""", uses=("get_value", "add"), data={16: "x-trap", 32: "x-seen", 48: "yes"})
TRAP = {**REQ, "x-trap": "1"}


def test_fail_closed_answers_503_now_and_later_without_calling_the_vm() -> None:
    with HttpEmulator(TRAP_ON_HEADER, name="t") as emu:
        ex = emu.request(TRAP)
        assert ex.status == 503 and ex.forwarded_headers is None
        assert ex.info.response_code_details == "wasm_fail_stream"
        assert any("proxy_on_request_headers" in r.message and r.plugin == "t" for r in emu.logs)
        ex2 = emu.request(REQ)
        assert ex2.status == 503 and ex2.forwarded_headers is None
        assert emu.request(REQ).status == 503


def test_fail_open_bypasses_the_plugin() -> None:
    with HttpEmulator(TRAP_ON_HEADER, failure_policy="fail_open") as emu:
        ex = emu.request(TRAP)
        assert ex.status == 200 and ex.forwarded_headers is not None
        ex2 = emu.request(REQ)
        assert ex2.status == 200 and "x-seen" not in ex2.forwarded_headers


def test_fail_reload_uses_a_fresh_vm() -> None:
    with HttpEmulator(TRAP_ON_HEADER, failure_policy="fail_reload") as emu:
        assert emu.request(TRAP).status == 503
        ex2 = emu.request(REQ)
        assert ex2.status == 200 and ex2.forwarded_headers["x-seen"] == "yes"
        assert len(emu.host.all_vms) == 1 and emu.host.plugins[0].reloads == 1
        assert emu.host.plugins[0].vm.failed is None


LOOP = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (loop $l (br $l)) (i32.const 0))
""")

BOMB = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)
""")


def test_infinite_loop_is_stopped_by_the_deadline() -> None:
    with HttpEmulator(LOOP, limits=Limits(call_timeout_ms=50)) as emu:
        ex = emu.request(REQ)
        assert ex.status == 503
        assert any("deadline exceeded" in r.message for r in emu.logs)


def test_memory_bomb_is_stopped_by_the_cap() -> None:
    with HttpEmulator(BOMB, limits=Limits(memory_limit_bytes=4 * 1024 * 1024)) as emu:
        ex = emu.request(REQ)
        assert ex.status == 503
        vm = emu.host.all_vms[0]
        assert vm.failed is not None
        assert emu.host.all_vms[0].store is not None


BAD = 0xFFFFFF00
HOSTILE_CALLS = [
    ("proxy_log", "(call $log (i32.const 2) (i32.const {p}) (i32.const 100))"),
    ("get_value", "(call $get_value (i32.const 0) (i32.const {p}) (i32.const 300) (i32.const 8192) (i32.const 8196))"),
    ("get_value_ret", "(call $get_value (i32.const 0) (i32.const 16) (i32.const 5) (i32.const {p}) (i32.const {p}))"),
    ("add", "(call $add (i32.const 0) (i32.const {p}) (i32.const 5) (i32.const 16) (i32.const 5))"),
    ("get_pairs_ret", "(call $get_pairs (i32.const 0) (i32.const {p}) (i32.const 8196))"),
    ("set_buf", "(call $set_buf (i32.const 0) (i32.const 0) (i32.const 0) (i32.const {p}) (i32.const 10))"),
    ("local", "(call $local (i32.const 200) (i32.const 0) (i32.const 0) (i32.const {p}) (i32.const 64) (i32.const 0) (i32.const 0) (i32.const -1))"),
    ("http_call", "(call $http_call (i32.const {p}) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8192))"),
    ("get_prop", "(call $get_prop (i32.const {p}) (i32.const 8) (i32.const 8192) (i32.const 8196))"),
    ("set_shared", "(call $set_shared (i32.const 16) (i32.const 3) (i32.const {p}) (i32.const 1000) (i32.const 0))"),
    ("grpc_call", "(call $grpc_call (i32.const {p}) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8192))"),
    ("foreign", "(call $foreign (i32.const {p}) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 8192) (i32.const 8196))"),
    ("define_metric", "(call $define_metric (i32.const 0) (i32.const {p}) (i32.const 4) (i32.const 8192))"),
    ("reg_q", "(call $reg_q (i32.const 16) (i32.const 3) (i32.const {p}))"),
]


def test_hostile_pointers_get_invalid_memory_access() -> None:
    stores = "\n".join(
        f"(i32.store (i32.const {9000 + 4 * i}) {expr.format(p=BAD)})"
        for i, (_n, expr) in enumerate(HOSTILE_CALLS))
    code = build(f"""
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        {stores}
        (i32.const 0))
    """, uses=("log", "get_value", "add", "get_pairs", "set_buf", "local", "http_call",
               "get_prop", "set_shared", "grpc_call", "foreign", "define_metric", "reg_q"),
        data={16: ":path"})
    with HttpEmulator(code, clusters=["c"]) as emu:
        ex = emu.request(REQ, body="abc")
        vm = emu.host.all_vms[0]
        got = {name: vm.mem.get_u32(9000 + 4 * i) for i, (name, _e) in enumerate(HOSTILE_CALLS)}
        assert got == {name: abi.INVALID_MEMORY_ACCESS for name, _e in HOSTILE_CALLS}
        assert vm.failed is None and ex.status == 200


def test_unknown_map_and_buffer_types() -> None:
    code = build("""
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 9000) (call $get_value (i32.const 99) (i32.const 16) (i32.const 3) (i32.const 8192) (i32.const 8196)))
        (i32.store (i32.const 9004) (call $get_buf (i32.const 99) (i32.const 0) (i32.const 1) (i32.const 8192) (i32.const 8196)))
        (i32.store (i32.const 9008) (call $get_buf (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8192) (i32.const 8196)))
        (i32.store (i32.const 9012) (call $get_value (i32.const 2) (i32.const 16) (i32.const 3) (i32.const 8192) (i32.const 8196)))
        (i32.store (i32.const 9016) (call $grpc_call (i32.const 16) (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8192)))
        (i32.store (i32.const 9020) (call $foreign (i32.const 16) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 8192) (i32.const 8196)))
        (i32.store (i32.const 9024) (call $grpc_send (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 0)))
        (i32.store (i32.const 9028) (call $grpc_cancel (i32.const 1)))
        (i32.store (i32.const 9032) (call $grpc_close (i32.const 2)))
        (i32.const 0))
    """, uses=("get_value", "get_buf", "grpc_call", "foreign", "grpc_send", "grpc_cancel",
               "grpc_close"), data={16: "abc"})
    with HttpEmulator(code) as emu:
        emu.request(REQ)
        vm = emu.host.all_vms[0]
        # Envoy 1.40 (conformance case host_departures): the request body buffer exists
        # (empty) before any body; an unknown gRPC cluster is PARSE_FAILURE; a
        # stream-shaped gRPC token (2) that does not exist is NOT_FOUND
        assert [vm.mem.get_u32(9000 + 4 * i) for i in range(9)] == [
            abi.BAD_ARGUMENT, abi.BAD_ARGUMENT, abi.OK, abi.BAD_ARGUMENT,
            abi.PARSE_FAILURE, abi.NOT_FOUND, abi.BAD_ARGUMENT, abi.NOT_FOUND, abi.NOT_FOUND]


# ---------------------------------------------------------------- network filters
TCP = build("""
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 64) (i32.const 3))) (i32.const 0))
  (func (export "proxy_on_downstream_data") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (i32.lt_u (local.get $size) (i32.const 6)) (then (return (i32.const 1))))
    (drop (call $set_buf (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_upstream_data") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (drop (call $set_buf (i32.const 3) (local.get $size) (i32.const 0) (i32.const 24) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_downstream_connection_close") (param i32 i32)
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 5))))
  (func (export "proxy_on_done") (param i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 40) (i32.const 4))) (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (drop (call $log (i32.const 2) (i32.const 48) (i32.const 3))))
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 56) (i32.const 6))))
""", uses=("set_buf", "log"),
    data={16: "X", 24: "!", 32: "close", 40: "done", 48: "log", 56: "delete", 64: "new"})


def test_network_filter_buffers_rewrites_and_tears_down_in_tcp_order() -> None:
    with TcpEmulator(TCP) as emu:
        s = emu.connect()
        s.client_sends("abc")
        assert s.upstream == b""
        s.client_sends("def")
        assert s.upstream == b"Xabcdef"
        s.upstream_sends("pong")
        assert s.downstream == b"pong!"
        s.client_closes()
        assert emu.log_messages() == ["new", "close", "done", "log", "delete"]


def test_public_api_is_used_when_the_raw_bindings_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmetool.host import fastpath
    monkeypatch.setattr(fastpath, "_RAW_OK", False)
    monkeypatch.delenv("WASMETOOL_HOST_FASTPATH", raising=False)
    with HttpEmulator(PROPS, name="props") as emu:
        assert emu.host.all_vms[0].raw is False
        assert emu.request(REQ).forwarded_headers["x-plugin"] == "props"


@pytest.mark.parametrize("fast", ["1", "ctypes", "0"])
def test_a_host_bug_becomes_internal_failure_not_a_crash(fast: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmetool.host import attributes
    monkeypatch.setenv("WASMETOOL_HOST_FASTPATH", fast)

    def broken(ctx: object, path: bytes) -> bytes:
        raise RuntimeError("host bug")
    monkeypatch.setattr(attributes, "get_property", broken)
    code = build("""
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 9000) (call $get_prop (i32.const 16) (i32.const 4) (i32.const 8192) (i32.const 8196)))
        (i32.const 0))
    """, uses=("get_prop",), data={16: "node"})
    with HttpEmulator(code) as emu:
        ex = emu.request(REQ)
        assert ex.status == 200
        assert emu.host.all_vms[0].mem.get_u32(9000) == abi.INTERNAL_FAILURE
        assert any("host bug" in r.message for r in emu.logs)


def test_initialize_then_main_and_a_differently_shaped_main_is_not_called() -> None:
    ok = build("""
      (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 16) (i32.const 4))))
      (func (export "main") (param i32 i32) (result i32)
        (drop (call $log (i32.const 2) (i32.const 32) (i32.const 4))) (i32.const 0))
    """, uses=("log",), data={16: "init", 32: "main"})
    with HttpEmulator(ok) as emu:
        assert emu.log_messages() == ["init", "main"]
    odd = build("""
      (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 16) (i32.const 4))))
      (func (export "main") (result i32) unreachable)
    """, uses=("log",), data={16: "init"})
    with HttpEmulator(odd) as emu:
        assert emu.log_messages() == ["init"]


def test_stack_overflow_is_a_trap_not_a_crash() -> None:
    code = build("""
      (func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $down (i32.const 0)))
    """)
    with HttpEmulator(code) as emu:
        assert emu.request(REQ).status == 503
        assert "stack" in (emu.host.all_vms[0].failed or "")


def test_runaway_start_up_is_refused_with_the_callback_named() -> None:
    code = build("""
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 1))
    """)
    with pytest.raises(WasmetoolError, match="proxy_on_vm_start failed: deadline exceeded"):
        HttpEmulator(code, limits=Limits(call_timeout_ms=30))


def test_runaway_tick_fails_the_vm_and_later_requests_get_503() -> None:
    code = build("""
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (drop (call $tick (i32.const 10))) (i32.const 1))
      (func (export "proxy_on_tick") (param i32) (loop $l (br $l)))
    """, uses=("tick",))
    with HttpEmulator(code, limits=Limits(call_timeout_ms=30), name="ticker") as emu:
        emu.advance(0.05)
        assert any(r.plugin == "ticker" and "proxy_on_tick" in r.message for r in emu.logs)
        assert emu.advance(1.0) == 0                   # the dead VM's timer is gone
        assert emu.request(REQ).status == 503


GRPC_STATUS_PROP = build("""
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $get_prop (i32.const 16) (i32.const 20) (i32.const 8192) (i32.const 8196)))
      (then (drop (call $add (i32.const 2) (i32.const 48) (i32.const 6)
                             (i32.load (i32.const 8192)) (i32.load (i32.const 8196))))))
    (i32.const 0))
""", uses=("get_prop", "add"), data={16: "response\0grpc_status", 48: "x-grpc"})


def test_response_grpc_status_maps_http_status_as_envoy() -> None:
    with HttpEmulator(GRPC_STATUS_PROP) as emu:
        for status, code in (("200", 2), ("404", 12), ("503", 14)):
            ex = emu.request(REQ, response_headers={":status": status})
            raw = [v for k, v in ex.response_headers if k == b"x-grpc"][0]
            assert struct.unpack("<q", raw)[0] == code
        ex = emu.request(REQ, response_headers={":status": "200", "grpc-status": "5"})
        assert struct.unpack("<q", [v for k, v in ex.response_headers if k == b"x-grpc"][0])[0] == 5


def test_wasi_stubs_answer_as_envoy_and_its_arities_are_enforced() -> None:
    code = build("""
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 9000) (call $set_flags (i32.const 1) (i32.const 0)))
        (i32.store (i32.const 9004) (call $filestat (i32.const 1) (i32.const 8192)))
        (i32.store (i32.const 9008) (call $readdir (i32.const 3) (i32.const 8192) (i32.const 8) (i64.const 0) (i32.const 8200)))
        (i32.store (i32.const 9012) (call $renumber (i32.const 1) (i32.const 3)))
        (i32.store (i32.const 9016) (call $open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 1)
                                             (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8192)))
        (i32.const 0))
    """, uses=("wasi_stubs",), data={16: "x"})
    with HttpEmulator(code) as emu:
        emu.request(REQ)
        mem = emu.host.all_vms[0].mem
        assert [mem.get_u32(9000 + 4 * i) for i in range(5)] == [52, 8, 20, 8, 44]   # Envoy's
    w = "wasi_snapshot_preview1"
    for imp in (f'(import "{w}" "proc_raise" (func (param i32) (result i32)))',
                f'(import "{w}" "path_link" (func (param i32 i32 i32 i32 i32 i32 i32) (result i32)))'):
        with pytest.raises(WasmetoolError, match="proc_raise|path_link"):
            HttpEmulator(module("", imports=imp))


I64_AND_TRAPS = build("""
  (global $m (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $define_metric (i32.const 1) (i32.const 16) (i32.const 5) (i32.const 8192)))
    (global.set $m (i32.load (i32.const 8192)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $record_metric (global.get $m) (i64.const 1099511627776)))
    (drop (call $inc_metric (global.get $m) (i64.const -3)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    unreachable)
""", uses=("define_metric", "record_metric", "inc_metric"), data={16: "gauge"})


TRAPPING_ALLOCATOR = module("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $get_value (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 8192)
                           (i32.const 8196)))
    (i32.const 0))
""", imports=IMPORTS["get_value"], data='(data (i32.const 16) ":path")', prelude="""
  (memory (export "memory") 2)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) unreachable)
""")


@pytest.mark.parametrize("fast", ["1", "ctypes", "0"])
def test_every_call_path_passes_i64_and_reports_traps_and_deadlines_alike(
        fast: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """C accelerator, ctypes and public API: signed i64 arguments, a trap's message, a
    runaway guest stopped by the deadline, and an allocator that traps inside a host call."""
    from wasmetool.host import fastpath
    monkeypatch.setenv("WASMETOOL_HOST_FASTPATH", fast)
    assert fastpath.fastpath_mode() == {"1": "c", "ctypes": "ctypes", "0": "public"}[fast]
    with HttpEmulator(I64_AND_TRAPS) as emu:
        ex = emu.request(REQ)
        assert emu.metric("gauge") == (1 << 40) - 3
        assert ex.status == 503
        assert any("wasm VM failed in proxy_on_response_headers: wasm `unreachable`" in r.message
                   for r in emu.logs)
    with HttpEmulator(LOOP, limits=Limits(call_timeout_ms=50)) as emu:
        assert emu.request(REQ).status == 503
        assert any("deadline exceeded" in r.message for r in emu.logs)
    with HttpEmulator(TRAPPING_ALLOCATOR) as emu:
        assert emu.request(REQ).status == 503
        assert any("allocator trapped" in r.message for r in emu.logs)
