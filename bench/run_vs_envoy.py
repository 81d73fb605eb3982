"""`wasmetool run` vs Envoy 1.40 (V8) with the same header-adding filter, upstream and load.

One run measures, for each proxy (alternating, 2 rounds by default):
requests/s, p50/p99 latency (wrk -t1 -c32 -d5s --latency after a 2 s warm-up) and CPU
µs per request (utime+stime of the proxy process from /proc); then prints the table,
the ratios, and the time to ready of `wasmetool run` with a cold and a warm module cache
(and Envoy's, for reference).

    .venv/bin/python bench/run_vs_envoy.py [--rounds 2] [--duration 5] [--connections 32]

Every process is a child of this script and is stopped by PID. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENVOY = str(BIN / "envoy")
WASMETOOL = [str(BIN / "wasmetool")] if (BIN / "wasmetool").exists() else [
    sys.executable, "-m", "wasmetool.cli.main"]
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The filter of envoy_probe.md: on response headers, add "hello: world" (ABI 0.2.1).
# It is the README's example filter, so the bench measures what a user runs first.
FILTER_WAT_PATH = Path(__file__).resolve().parent.parent / "examples" / "hello.wat"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, want: int = 200) -> float:
    """Poll until url answers `want`; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == want:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


HCM = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
       "HttpConnectionManager")


def envoy_config(listen: int, admin: int, upstream: int | None, wasm: Path | None) -> str:
    """Front proxy (router to `upstream`, optional wasm filter) or a direct_response upstream."""
    filters: list[dict[str, Any]] = []
    if upstream is None:
        route: dict[str, Any] = {"match": {"prefix": "/"}, "direct_response": {
            "status": 200, "body": {"inline_string": "ok"}}}
    else:
        route = {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}
        if wasm is not None:
            filters.append({"name": "envoy.filters.http.wasm", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {"name": "hello", "root_id": "", "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm)}}}}}})
    filters.append({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
    clusters = []
    if upstream is not None:
        clusters.append({"name": "backend", "type": "STATIC", "connect_timeout": "1s",
                         "load_assignment": {"cluster_name": "backend", "endpoints": [
                             {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                                 "address": "127.0.0.1", "port_value": upstream}}}}]}]}})
    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{"name": "l", "address": {"socket_address": {
                "address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {"@type": HCM, "stat_prefix": "ingress", "codec_type": "HTTP1",
                                     "route_config": {"virtual_hosts": [{
                                         "name": "all", "domains": ["*"], "routes": [route]}]},
                                     "http_filters": filters}}]}]}],
            "clusters": clusters,
        },
    }
    return json.dumps(config)


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT if "wasmetool" in self.name else signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_envoy(workdir: Path, name: str, upstream: int | None, wasm: Path | None) -> tuple[Proc, float]:
    port, admin = free_port(), free_port()
    config = workdir / f"{name}.json"
    config.write_text(envoy_config(port, admin, upstream, wasm))
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it
    start = time.monotonic()
    process = subprocess.Popen([ENVOY, "-c", str(config), "--concurrency", "1", "-l", "warn",
                                "--base-id", str(port)], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{admin}/ready")
    return Proc(name, process, port), time.monotonic() - start


def start_wasmetool(workdir: Path, wasm: Path | str, upstream: int, home: Path) -> tuple[Proc, float]:
    port = free_port()
    env = dict(os.environ, WASMETOOL_HOME=str(home))
    log = open(workdir / "wasmetool.log", "ab")  # noqa: SIM115 - the child keeps it
    start = time.monotonic()
    process = subprocess.Popen([*WASMETOOL, "run", str(wasm), "--listen", f"127.0.0.1:{port}",
                                "--upstream", f"http://127.0.0.1:{upstream}", "--admin", "off",
                                "--log-level", "warn"],
                               stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                               env=env)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    ready = time.monotonic() - start
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"wasmetool run did not start: {line!r}; see {workdir}/wasmetool.log")
    return Proc("wasmetool run", process, port), ready


def check_filter(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        if resp.headers.get("hello") != "world":
            raise RuntimeError(f"port {port}: response lacks 'hello: world' ({dict(resp.headers)})")


WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(port: int, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         check=True).stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
              "requests": float(re.search(r"(\d+) requests in", out).group(1))}
    for pct, value, unit in WRK_LATENCY.findall(out):
        result[f"p{pct}"] = float(value) * scale[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    if socket_errors:
        result["errors"] += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return result


def measure(proc: Proc, duration: int, connections: int, warmup: int) -> dict[str, float]:
    wrk(proc.port, warmup, connections)
    pid = proc.process.pid
    cpu0 = cpu_seconds(pid)
    result = wrk(proc.port, duration, connections)
    cpu = cpu_seconds(pid) - cpu0
    result["cpu_pct"] = 100.0 * cpu / duration
    result["cpu_us"] = 1e6 * cpu / max(result["requests"], 1.0)
    return result


def go_start_times(workdir: Path, upstream: int, samples: int) -> None:
    """Cold vs cached start of the Go (wasip1) filter that `wasmetool init` scaffolds."""
    home = workdir / "go-home"
    env = dict(os.environ, WASMETOOL_HOME=str(home))
    project = workdir / "gofilter"
    try:
        subprocess.run([*WASMETOOL, "init", str(project), "--language", "go", "--disable-prompt"],
                       env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([*WASMETOOL, "build", "-t", "bench/gofilter:v1"], cwd=project, env=env,
                       check=True, capture_output=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"  Go filter: not measured (init/build failed: "
              f"{detail.decode(errors='replace').strip()[-200:] or exc})")
        return
    compiled = home / "cache" / "compiled"
    cold, warm = [], []
    for _ in range(samples):
        shutil.rmtree(compiled, ignore_errors=True)
        proc, seconds = start_wasmetool(workdir, "bench/gofilter:v1", upstream, home)
        proc.stop()
        cold.append(seconds)
        proc, seconds = start_wasmetool(workdir, "bench/gofilter:v1", upstream, home)
        proc.stop()
        warm.append(seconds)
    from wasmetool.store import Store

    size = Store(home / "data" / "store").resolve("bench/gofilter:v1").wasm_size / 1e6
    print(f"  Go filter ({size:.1f} MB), wasmetool run, cold module cache : "
          f"{statistics.median(cold) * 1000:7.0f} ms")
    print(f"  Go filter ({size:.1f} MB), wasmetool run, cached module     : "
          f"{statistics.median(warm) * 1000:7.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--starts", type=int, default=3,
                        help="start-time samples per case (0: skip the start-time part)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    import wasmtime

    workdir = Path(tempfile.mkdtemp(prefix="wasmetool-bench-"))
    wasm = workdir / "filter.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(FILTER_WAT_PATH.read_text()))
    home = workdir / "home"
    procs: list[Proc] = []
    try:
        upstream, _ = start_envoy(workdir, "upstream", None, None)
        procs.append(upstream)
        envoy, _ = start_envoy(workdir, "envoy", upstream.port, wasm)
        procs.append(envoy)
        ours, _ = start_wasmetool(workdir, wasm, upstream.port, home)
        procs.append(ours)
        check_filter(envoy.port)
        check_filter(ours.port)
        print(f"filter: {wasm.stat().st_size}-byte WAT module adding 'hello: world' to responses; "
              f"upstream: Envoy direct_response; load: wrk -t1 -c{args.connections} "
              f"-d{args.duration}s after {args.warmup}s warm-up\n")
        rows: list[tuple[str, int, dict[str, float]]] = []
        for round_no in range(1, args.rounds + 1):
            for proc in (envoy, ours):
                result = measure(proc, args.duration, args.connections, args.warmup)
                rows.append((proc.name, round_no, result))
                print(f"  round {round_no} {proc.name:<14} {result['rps']:>9.0f} req/s  "
                      f"p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms  "
                      f"{result['cpu_us']:.1f} µs CPU/req", flush=True)
        ours.stop()
        envoy.stop()

        print()
        header = (f"{'proxy':<14} {'round':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
                  f"{'CPU %':>6} {'µs CPU/req':>10} {'errors':>6}")
        print(header)
        print("-" * len(header))
        for name, round_no, r in rows:
            print(f"{name:<14} {round_no:>5} {r['rps']:>9.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} "
                  f"{r['cpu_pct']:>6.0f} {r['cpu_us']:>10.1f} {r['errors']:>6.0f}")

        def mean(name: str, key: str) -> float:
            return statistics.mean(r[key] for n, _, r in rows if n == name)

        print()
        for key, label, better in (("rps", "req/s", "higher"), ("p99", "p99 latency", "lower"),
                                   ("p50", "p50 latency", "lower"),
                                   ("cpu_us", "CPU µs/request", "lower")):
            a, b = mean("wasmetool run", key), mean("envoy", key)
            print(f"{label:<16} wasmetool {a:>9.2f}   envoy {b:>9.2f}   "
                  f"ratio {a / b:.2f}x ({better} is better)")
        paired = [r["rps"] / e["rps"] for (n, _, r), (m, _, e) in
                  zip(rows[1::2], rows[0::2], strict=True) if n == "wasmetool run" and m == "envoy"]
        print("paired req/s ratios (wasmetool / envoy of the same round): "
              + ", ".join(f"{p:.2f}x" for p in paired))

        if args.starts <= 0:
            return 0
        print("\ntime to ready (spawn → listening), median of", args.starts)
        cold, warm, envoy_ready = [], [], []
        for _ in range(args.starts):
            shutil.rmtree(home, ignore_errors=True)
            proc, seconds = start_wasmetool(workdir, wasm, upstream.port, home)
            proc.stop()
            cold.append(seconds)
            proc, seconds = start_wasmetool(workdir, wasm, upstream.port, home)
            proc.stop()
            warm.append(seconds)
            proc, seconds = start_envoy(workdir, "envoy-start", upstream.port, wasm)
            proc.stop()
            envoy_ready.append(seconds)
        print(f"  WAT filter ({wasm.stat().st_size} B), wasmetool run, cold module cache : "
              f"{statistics.median(cold) * 1000:7.0f} ms")
        print(f"  WAT filter ({wasm.stat().st_size} B), wasmetool run, cached module     : "
              f"{statistics.median(warm) * 1000:7.0f} ms")
        print(f"  WAT filter ({wasm.stat().st_size} B), envoy (V8), to admin /ready      : "
              f"{statistics.median(envoy_ready) * 1000:7.0f} ms")
        go_start_times(workdir, upstream.port, args.starts)
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
