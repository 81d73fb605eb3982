"""Root contexts: singletons, ticks, proxy_done at shutdown, failures outside streams."""

from __future__ import annotations

from wat import build

from wasmetool.host import abi
from wasmetool.testing import HttpEmulator, RootEmulator, TcpEmulator

REQ = {":method": "GET", ":path": "/", ":authority": "example.com"}

SINGLETON = build("""
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (drop (call $get_buf (i32.const 6) (i32.const 0) (local.get $size) (i32.const 8192) (i32.const 8196)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 8192)) (i32.load (i32.const 8196))))
    (drop (call $tick (i32.const 1000)))
    (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (drop (call $get_buf (i32.const 7) (i32.const 0) (local.get $size) (i32.const 8192) (i32.const 8196)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 8192)) (i32.load (i32.const 8196))))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $log (i32.const 1) (i32.const 16) (i32.const 4))))
  (func (export "proxy_on_done") (param i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 4)))
    (i32.const 0))
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 48) (i32.const 6))))
""", uses=("get_buf", "log", "tick"), data={16: "tick", 32: "done", 48: "delete"})


def test_singleton_reads_configs_ticks_without_traffic_and_defers_delete() -> None:
    emu = RootEmulator(SINGLETON, vm_configuration="vm-cfg", configuration="plugin-cfg",
                       name="svc")
    assert emu.log_messages() == ["vm-cfg", "plugin-cfg"]
    assert emu.advance(3.0) == 3
    assert emu.log_messages(abi.DEBUG) == ["tick", "tick", "tick"]
    assert not emu.host.has_http_filters()
    root = emu.host.plugins[0].root
    emu.close()                                    # on_done returns false: delete waits
    assert emu.log_messages()[-1] == "done" and root.done_pending


def test_log_level_filters_plugin_logs() -> None:
    emu = RootEmulator(SINGLETON, vm_configuration="a", configuration="b", log_level=abi.INFO)
    emu.advance(2.0)
    assert emu.log_messages(abi.DEBUG) == []
    emu.close()


TRAP_IN_CALLBACK = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $http_call (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)
                            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 8192)))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32) unreachable)
""", uses=("http_call",), data={16: "c"})


def test_vm_failing_in_a_root_callback_fails_the_waiting_stream() -> None:
    from wasmetool.host.dispatch import HttpCallResponse
    # the module's call has no headers (BAD_ARGUMENT): deliver a response for token 1 directly
    with HttpEmulator(TRAP_IN_CALLBACK, clusters=["c"]) as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ, end_stream=True)
        vm = emu.host.all_vms[0]
        root = emu.host.plugins[0].root
        emu.host._http_call_done(vm, root, 1, HttpCallResponse([(b":status", b"200")]))
        emu.run_pending()
        assert vm.failed is not None
        assert ex.status == 503 and ex.forwarded_headers is None


def test_fail_open_resumes_the_waiting_stream() -> None:
    from wasmetool.host.dispatch import HttpCallResponse
    with HttpEmulator(TRAP_IN_CALLBACK, clusters=["c"], failure_policy="fail_open") as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ, end_stream=True)
        vm = emu.host.all_vms[0]
        emu.host._http_call_done(vm, emu.host.plugins[0].root, 1,
                                 HttpCallResponse([(b":status", b"200")]))
        emu.run_pending()
        assert ex.forwarded_headers is not None and ex.local_reply is None


EFFECTIVE = build("""
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (i32.store (i32.const 9000) (call $eff (i32.const 12345)))
    (i32.store (i32.const 9004) (call $eff (i32.const 1)))
    (i32.store (i32.const 9008) (call $add (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 16) (i32.const 3)))
    (i32.const 0))
""", uses=("eff", "add"), data={16: "abc"})


def test_effective_context_unknown_id_and_root_has_no_headers() -> None:
    with HttpEmulator(EFFECTIVE) as emu:
        ex = emu.request(REQ)
        mem = emu.host.all_vms[0].mem
        assert mem.get_u32(9000) == abi.BAD_ARGUMENT
        assert mem.get_u32(9004) == abi.OK              # root context 1 is effective now
        assert mem.get_u32(9008) == abi.BAD_ARGUMENT    # ...and it has no request headers
        assert "abc" not in ex.forwarded_headers


QUEUE_ORDER = build("""
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $reg_q (i32.const 16) (i32.const 1) (i32.const 8192)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $enq (i32.load (i32.const 8192)) (i32.const 16) (i32.const 1)))
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 8)))
    (i32.const 0))
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (drop (call $log (i32.const 2) (i32.const 48) (i32.const 5))))
""", uses=("reg_q", "enq", "log"), data={16: "q", 32: "enqueued", 48: "ready"})


def test_queue_ready_is_delivered_asynchronously() -> None:
    with HttpEmulator(QUEUE_ORDER) as emu:
        emu.request(REQ)
        assert emu.log_messages() == ["enqueued", "ready"]
        assert emu.queue_items("q") == [b"q"]


TCP_TRAP = build("""
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32) unreachable)
""")


def test_network_filter_fail_closed_closes_and_fail_open_passes() -> None:
    with TcpEmulator(TCP_TRAP) as emu:
        s = emu.connect().client_sends("x")
        assert s.closed and s.upstream == b""
        assert emu.connect().closed                     # later connections: closed at once
    with TcpEmulator(TCP_TRAP, failure_policy="fail_open") as emu:
        s = emu.connect().client_sends("x")
        assert not s.closed and s.upstream == b"x"


TRACE = build("""
  (func $say (param $p i32) (param $ctx i32)
    (i32.store8 (i32.const 8400) (local.get $p))
    (i32.store8 (i32.const 8401) (i32.add (i32.const 48) (local.get $ctx)))
    (drop (call $log (i32.const 2) (i32.const 8400) (i32.const 2))))
  (func (export "proxy_on_context_create") (param $ctx i32) (param $root i32)
    (call $say (i32.const 67) (local.get $ctx)))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (call $say (i32.const 72) (local.get $ctx)) (i32.const 0))
  (func (export "proxy_on_log") (param $ctx i32) (call $say (i32.const 76) (local.get $ctx)))
  (func (export "proxy_on_done") (param $ctx i32) (result i32) (call $say (i32.const 68) (local.get $ctx)) (i32.const 1))
  (func (export "proxy_on_delete") (param $ctx i32) (call $say (i32.const 88) (local.get $ctx)))
""", uses=("log",))


def test_stream_contexts_are_created_when_the_stream_reaches_the_filter() -> None:
    # Envoy 1.40, two plugins in one VM: C3 H3 C4 H4, then L3 L4 D3 X3 D4 X4
    from wasmetool.host.config import PluginConfig, VmConfig
    plugins = [PluginConfig(name=n, root_id=n, vm=VmConfig(code=TRACE, vm_id="one"))
               for n in ("a", "b")]
    with HttpEmulator(plugins=plugins) as emu:
        assert emu.log_messages() == ["C1", "C2"]
        emu.logs.clear()
        emu.request(REQ)
        assert emu.log_messages() == ["C3", "H3", "C4", "H4", "L3", "L4", "D3", "X3", "D4", "X4"]


def test_a_filter_after_a_local_reply_is_created_only_for_its_log() -> None:
    from test_http_filters import LOCAL

    from wasmetool.host.config import PluginConfig, VmConfig
    plugins = [PluginConfig(name="deny", vm=VmConfig(code=LOCAL, vm_id="d")),
               PluginConfig(name="trace", vm=VmConfig(code=TRACE, vm_id="t"))]
    with HttpEmulator(plugins=plugins) as emu:
        emu.logs.clear()
        ex = emu.request(REQ)
        assert ex.status == 403
        assert emu.log_messages() == ["C2", "L2", "D2", "X2"]
        emu.logs.clear()
        ex = emu.new_exchange()
        ex.send_request_headers(REQ, end_stream=True)
        ex.stream.reset()                               # a reset stream too (Envoy 1.40)
        assert emu.log_messages() == ["C3", "L3", "D3", "X3"]


TCP_TRACE = build("""
  (func $say (param $p i32) (param $n i32)
    (i32.store8 (i32.const 8400) (local.get $p))
    (i32.store8 (i32.const 8401) (i32.add (i32.const 48) (local.get $n)))
    (drop (call $log (i32.const 2) (i32.const 8400) (i32.const 2))))
  (func (export "proxy_on_upstream_connection_close") (param $ctx i32) (param $peer i32)
    (call $say (i32.const 117) (local.get $peer)))
  (func (export "proxy_on_downstream_connection_close") (param $ctx i32) (param $peer i32)
    (call $say (i32.const 100) (local.get $peer)))
  (func (export "proxy_on_done") (param $ctx i32) (result i32) (call $say (i32.const 79) (local.get $ctx)) (i32.const 1))
  (func (export "proxy_on_log") (param $ctx i32) (call $say (i32.const 76) (local.get $ctx)))
  (func (export "proxy_on_delete") (param $ctx i32) (call $say (i32.const 88) (local.get $ctx)))
""", uses=("log",))


def test_tcp_close_callbacks_peer_types_and_order_as_envoy() -> None:
    # Envoy 1.40, upstream closing after its answer: u:0 d:1 then done -> log -> delete
    with TcpEmulator(TCP_TRACE) as emu:
        emu.connect().client_sends("hello").upstream_sends("echo", end_stream=True).upstream_closes()
        assert emu.log_messages() == ["u0", "d1", "O2", "L2", "X2"]
        emu.logs.clear()
        emu.connect().client_sends("x").client_closes()     # the client leaves first: REMOTE
        assert emu.log_messages() == ["d2", "O3", "L3", "X3"]


def test_two_plugins_may_share_a_name() -> None:
    # Envoy accepts one PluginConfig name on two filters of a chain; each keeps its own root
    from wasmetool.host.config import PluginConfig, VmConfig
    plugins = [PluginConfig(name="same", vm=VmConfig(code=TRACE, vm_id="one")) for _ in range(2)]
    with HttpEmulator(plugins=plugins) as emu:
        assert emu.log_messages() == ["C1", "C2"]
        emu.logs.clear()
        emu.request(REQ)
        assert emu.log_messages() == ["C3", "H3", "C4", "H4", "L3", "L4", "D3", "X3", "D4", "X4"]
        assert {(r.plugin, r.context_id) for r in emu.logs} == {("same", 3), ("same", 4)}
