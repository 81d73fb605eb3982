"""In-process test API for proxy-wasm modules: no sockets, a manual clock.

Split like proxy-wasm-go-sdk's proxytest: :mod:`.http` (HTTP filters), :mod:`.network`
(TCP filters), :mod:`.root` (root contexts, singletons, ticks, queues, the common base).

    from wasmetool.testing import HttpEmulator
    emu = HttpEmulator(open("filter.wasm", "rb").read(), configuration=b"...")
    ex = emu.request({":path": "/", ":method": "GET", ":authority": "x"})
    assert ex.forwarded_headers["hello"] == "world"
"""

from wasmetool.testing.http import Exchange, HttpEmulator
from wasmetool.testing.network import TcpEmulator, TcpSession
from wasmetool.testing.root import HostEmulator, RootEmulator

__all__ = ["Exchange", "HostEmulator", "HttpEmulator", "RootEmulator", "TcpEmulator",
           "TcpSession"]
