"""Cold vs cached start of the host for one module (e.g. a 2.7 MB Go wasip1 filter).

Each measurement runs in a fresh Python process: it times ``Host.start()`` (compile or
load from the on-disk cache, link, instantiate, _initialize, root context, vm_start,
configure) and, separately, the whole process start to the first request.

Usage: .venv/bin/python bench/host_startup.py FILTER.wasm
Build a Go filter: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm .
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from wasmetool.testing import HttpEmulator
from wasmetool.host.config import PluginConfig, VmConfig
code = open(sys.argv[1], "rb").read()
t1 = time.perf_counter()
emu = HttpEmulator(code, start=False)
emu.start()
t2 = time.perf_counter()
ex = emu.request({":method": "GET", ":path": "/", ":authority": "x"})
t3 = time.perf_counter()
assert ex.status == 200, ex.status
print(json.dumps({"imports_ms": (t1 - t0) * 1e3, "start_ms": (t2 - t1) * 1e3,
                  "first_request_ms": (t3 - t2) * 1e3,
                  "cache_hit": emu.host.all_vms[0].cache_hit}))
"""


def measure(path: str, home: str) -> dict[str, float]:
    env = dict(os.environ, WASMETOOL_HOME=home)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, path], env=env, check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out)
    r["process_ms"] = (time.perf_counter() - t) * 1e3
    return r


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    size = os.path.getsize(path)
    with tempfile.TemporaryDirectory(prefix="wasmetool-startup-") as home:
        cold = measure(path, home)
        cached = [measure(path, home) for _ in range(3)]
    best = min(cached, key=lambda r: r["start_ms"])
    print(f"module: {path} ({size / 1e6:.2f} MB)")
    print(f"{'':18} {'cold':>10} {'cached':>10}")
    for key in ("start_ms", "first_request_ms", "imports_ms", "process_ms"):
        print(f"{key:18} {cold[key]:10.1f} {best[key]:10.1f}")
    print(f"cache hit: cold={cold['cache_hit']} cached={best['cache_hit']}; "
          f"Host.start() {cold['start_ms'] / best['start_ms']:.0f}x faster from the cache")


if __name__ == "__main__":
    main()
