"""A host call given memory outside the guest's: Envoy's status, a debug log line, and the
host's on_memory_fault hook (what the test API's strict mode uses)."""

from __future__ import annotations

from wat import build

from wasmetool.host import abi
from wasmetool.testing import HttpEmulator

REQ = {":method": "GET", ":path": "/", ":authority": "example.com", ":scheme": "http"}
CODE = build("""
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 9000) (call $log (i32.const 2) (i32.const 0xFFFFFF00) (i32.const 100)))
    (i32.store (i32.const 9004) (call $get_value (i32.const 0) (i32.const 16) (i32.const 5)
                                                 (i32.const 0xFFFFFFF0) (i32.const 8196)))
    (i32.store (i32.const 9008) (call $log (i32.const 2) (i32.const 16) (i32.const 5)))
    (i32.const 0))
""", uses=("log", "get_value"), data={16: ":path"})


def test_outside_pointer_answers_invalid_memory_access_and_is_logged_at_debug() -> None:
    with HttpEmulator(CODE, log_level=abi.DEBUG) as emu:
        seen: list[tuple[str, str]] = []
        emu.host.on_memory_fault = lambda plugin, message: seen.append((plugin, message))
        ex = emu.request(REQ)
        vm = emu.host.all_vms[0]
        assert [vm.mem.get_u32(9000 + 4 * i) for i in range(3)] == [
            abi.INVALID_MEMORY_ACCESS, abi.INVALID_MEMORY_ACCESS, abi.OK]
        debug = [m for m in emu.log_messages(abi.DEBUG) if "outside the guest" in m]
        assert len(debug) == 2 and "100 bytes at 0xffffff00" in debug[0]
        assert [plugin for plugin, _m in seen] == ["plugin", "plugin"]
        assert emu.host.counters["wasmetool_memory_faults_total"] == 2
        assert vm.failed is None and ex.status == 200          # the stream goes on


def test_no_debug_line_above_debug_level() -> None:
    with HttpEmulator(CODE, log_level=abi.INFO) as emu:
        emu.request(REQ)
        assert not [m for m in emu.log_messages() if "outside the guest" in m]
        assert emu.host.counters["wasmetool_memory_faults_total"] == 2
