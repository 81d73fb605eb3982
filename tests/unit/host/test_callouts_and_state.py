"""http_call, timers, metrics, shared data, shared queues between VMs, singletons."""

from __future__ import annotations

from wat import build

from wasmetool.host import abi, pairs
from wasmetool.host.config import PluginConfig, VmConfig
from wasmetool.testing import HttpEmulator

REQ = {":method": "GET", ":path": "/", ":authority": "example.com"}
CALL_HEADERS = pairs.encode([(b":method", b"GET"), (b":path", b"/check"), (b":authority", b"auth")])

AUTH = build(f"""
  (global $stream (mut i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (global.set $stream (local.get $ctx))
    (i32.store (i32.const 8300)
      (call $http_call (i32.const 16) (i32.const 4) (i32.const 64) (i32.const {len(CALL_HEADERS)})
                       (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 8192)))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32) (param $nh i32) (param $bs i32) (param $nt i32)
    (drop (call $eff (global.get $stream)))
    (drop (call $get_status (i32.const 8200) (i32.const 8204) (i32.const 8208)))
    (if (i32.eqz (local.get $nh))
      (then (drop (call $local (i32.const 503) (i32.const 0) (i32.const 0) (i32.const 32) (i32.const 6)
                             (i32.const 0) (i32.const 0) (i32.const -1))))
      (else
        (drop (call $get_buf (i32.const 4) (i32.const 0) (local.get $bs) (i32.const 8212) (i32.const 8216)))
        (drop (call $add (i32.const 0) (i32.const 48) (i32.const 6)
                         (i32.load (i32.const 8212)) (i32.load (i32.const 8216))))
        (drop (call $cont (i32.const 0))))))
""", uses=("http_call", "eff", "get_status", "local", "get_buf", "add", "cont"),
    data={16: "auth", 32: "denied", 48: "x-auth", 64: CALL_HEADERS})


def test_http_call_pauses_then_resumes_with_callout_body() -> None:
    with HttpEmulator(AUTH, clusters=["auth"]) as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ, end_stream=True)
        assert ex.forwarded_headers is None
        (call,) = emu.pending_http_calls()
        assert call.cluster == "auth" and (b":path", b"/check") in call.headers
        assert call.timeout_ms == 1000
        emu.answer_http_call(200, body="user-1")
        assert ex.forwarded_headers["x-auth"] == "user-1"
        vm = emu.host.all_vms[0]
        assert vm.mem.get_u32(8200) == abi.OK


def test_http_call_failure_calls_back_with_zero_headers() -> None:
    with HttpEmulator(AUTH, clusters=["auth"]) as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ, end_stream=True)
        emu.answer_http_call(fail=True)
        assert ex.local_reply[0] == 503 and ex.local_reply[2] == b"denied"
        vm = emu.host.all_vms[0]
        assert vm.mem.get_u32(8200) == abi.BROKEN_CONNECTION     # proxy_get_status → (11, "reset")


def test_http_call_to_unknown_cluster_is_bad_argument() -> None:
    with HttpEmulator(AUTH, clusters=[]) as emu:
        ex = emu.new_exchange()
        ex.send_request_headers(REQ, end_stream=True)
        assert emu.host.all_vms[0].mem.get_u32(8300) == abi.BAD_ARGUMENT
        assert emu.pending_http_calls() == []


TICKER = build("""
  (global $m (mut i32) (i32.const 0))
  (global $g (mut i32) (i32.const 0))
  (global $h (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $define_metric (i32.const 2) (i32.const 48) (i32.const 7) (i32.const 8192)))
    (global.set $h (i32.load (i32.const 8192)))
    (drop (call $define_metric (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 8192)))
    (global.set $m (i32.load (i32.const 8192)))
    (drop (call $define_metric (i32.const 1) (i32.const 32) (i32.const 5) (i32.const 8192)))
    (global.set $g (i32.load (i32.const 8192)))
    (drop (call $tick (i32.const 100)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $inc_metric (global.get $m) (i64.const 1)))
    (drop (call $record_metric (global.get $g) (i64.const 42)))
    (drop (call $record_metric (global.get $h) (i64.const 7))))
""", uses=("define_metric", "inc_metric", "record_metric", "tick"),
    data={16: "ticks", 32: "level", 48: "latency"})


def test_ticks_drive_metrics_and_prometheus_text() -> None:
    with HttpEmulator(TICKER) as emu:
        assert emu.metric("ticks") == 0
        emu.advance(1.0)
        assert emu.metric("ticks") == 10
        assert emu.metric("level") == 42
        text = emu.prometheus()
        assert "# TYPE ticks counter\nticks 10" in text
        assert "level 42" in text
        assert 'latency_bucket{le="5"} 0\nlatency_bucket{le="10"} 10' in text
        assert "latency_sum 70\nlatency_count 10" in text


SENDER = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $set_shared (i32.const 16) (i32.const 3) (i32.const 24) (i32.const 2) (i32.const 0)))
    (if (i32.eqz (call $resolve_q (i32.const 0) (i32.const 0) (i32.const 32) (i32.const 5) (i32.const 8192)))
      (then (drop (call $enq (i32.load (i32.const 8192)) (i32.const 48) (i32.const 5)))))
    (i32.const 0))
""", uses=("set_shared", "resolve_q", "enq"), data={16: "key", 24: "v1", 32: "queue", 48: "hello"})

RECEIVER = build("""
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $reg_q (i32.const 32) (i32.const 5) (i32.const 8192)))
    (i32.const 1))
  (func (export "proxy_on_queue_ready") (param $root i32) (param $q i32)
    (if (i32.eqz (call $deq (local.get $q) (i32.const 8200) (i32.const 8204)))
      (then (drop (call $log (i32.const 2) (i32.load (i32.const 8200)) (i32.load (i32.const 8204))))))
    (drop (call $get_shared (i32.const 16) (i32.const 3) (i32.const 8208) (i32.const 8212) (i32.const 8216)))
    (drop (call $log (i32.const 3) (i32.load (i32.const 8208)) (i32.load (i32.const 8212)))))
""", uses=("reg_q", "deq", "log", "get_shared"), data={16: "key", 32: "queue"})


def test_shared_queue_and_data_between_vms_with_a_singleton() -> None:
    plugins = [
        PluginConfig(name="receiver", kind="singleton", vm=VmConfig(code=RECEIVER, vm_id="shared")),
        PluginConfig(name="sender", vm=VmConfig(code=SENDER, vm_id="shared")),
    ]
    with HttpEmulator(plugins=plugins) as emu:
        assert len(emu.host.all_vms) == 2             # same vm_id, different code: two VMs
        emu.request(REQ)
        assert [(r.plugin, r.level, r.message) for r in emu.logs] == [
            ("receiver", abi.INFO, "hello"), ("receiver", abi.WARN, "v1")]
        assert emu.shared_data("key", vm_id="shared") == b"v1"


def test_shared_data_cas() -> None:
    from wasmetool.host.shared_state import SharedData
    sd = SharedData()
    assert sd.set("vm", b"k", b"1", 0) == abi.OK
    _, cas = sd.get("vm", b"k")
    assert sd.set("vm", b"k", b"2", cas + 1) == abi.CAS_MISMATCH
    assert sd.set("vm", b"k", b"2", cas) == abi.OK
    assert sd.get("vm", b"k")[0] == b"2"
    assert sd.get("other", b"k") is None               # scoped per vm_id
    assert sd.set("vm", b"new", b"x", 77) == abi.OK    # CAS on a missing key succeeds


def test_two_plugins_with_same_vm_id_and_code_share_one_vm() -> None:
    plugins = [PluginConfig(name=f"p{i}", root_id=f"r{i}", vm=VmConfig(code=SENDER, vm_id="v"))
               for i in range(2)]
    with HttpEmulator(plugins=plugins) as emu:
        assert len(emu.host.all_vms) == 1
        roots = [p.root.id for p in emu.host.plugins]
        assert roots == [1, 2]
