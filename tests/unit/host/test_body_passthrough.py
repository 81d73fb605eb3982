"""Body data passes filters that have no body callback without a call into them (the filter
manager's shortcut), and still reaches the filters that have one, in chain order."""

from __future__ import annotations

from wat import ADD_HEADER, build

from wasmetool.host import abi
from wasmetool.host.config import PluginConfig, VmConfig
from wasmetool.testing import HttpEmulator

REQ = {":method": "POST", ":path": "/", ":authority": "example.com", ":scheme": "http"}

LOG_BODY = build("""
  (func (export "proxy_on_request_body") (param i32) (param $size i32) (param $eos i32) (result i32)
    (drop (call $log (i32.const 2) (i32.add (i32.const 16) (i32.mul (local.get $eos) (i32.const 8)))
                (i32.const 6)))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param i32) (param $size i32) (param $eos i32) (result i32)
    (drop (call $log (i32.const 2) (i32.add (i32.const 32) (i32.mul (local.get $eos) (i32.const 8)))
                (i32.const 6)))
    (i32.const 0))
""", uses=("log",), data={16: "req  0", 24: "req  1", 32: "resp 0", 40: "resp 1"})


def _exchange(emu: HttpEmulator) -> object:
    ex = emu.new_exchange()
    ex.send_request_headers(REQ)
    ex.send_request_body("abc", end_stream=False)
    ex.send_request_body("def", end_stream=True)
    ex.send_response_headers_upstream({":status": "200"})
    ex.send_response_body_upstream("xyz", end_stream=False)
    ex.send_response_body_upstream("", end_stream=True)
    ex.complete()
    return ex


def test_body_passes_a_filter_without_body_callbacks_unchanged() -> None:
    with HttpEmulator(ADD_HEADER) as emu:
        ex = _exchange(emu)
        assert ex.forwarded_body == b"abcdef"          # type: ignore[attr-defined]
        assert ex.request_end                           # type: ignore[attr-defined]
        assert ex.response_body == b"xyz"               # type: ignore[attr-defined]
        assert ex.response_headers["hello"] == "world"  # type: ignore[attr-defined]


def test_body_still_reaches_later_filters_with_body_callbacks() -> None:
    plugins = [PluginConfig(name="add", vm=VmConfig(code=ADD_HEADER, vm_id="a")),
               PluginConfig(name="log", vm=VmConfig(code=LOG_BODY, vm_id="b"))]
    with HttpEmulator(plugins=plugins) as emu:
        ex = _exchange(emu)
        assert ex.forwarded_body == b"abcdef"          # type: ignore[attr-defined]
        assert ex.response_body == b"xyz"               # type: ignore[attr-defined]
        assert emu.log_messages(abi.INFO) == ["req  0", "req  1", "resp 0", "resp 1"]
