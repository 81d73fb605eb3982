"""`wasmetool run` vs Envoy 1.40 (V8): same filters, same upstream, same load, alternated.

Four cases: {header filter (examples/hello.wat adds "hello: world"), body-rewriting filter
(bench/upper_body.wat buffers the response body and upper-cases it)} × {keep-alive, a new
connection per request (`Connection: close`)}. Each round measures every case on both
proxies back to back (the order flips every round), with `wrk -t1 -c32 -d5s --latency`
after a 2 s warm-up: requests/s, p50/p99 latency, and CPU µs per request (utime+stime of
the proxy process from /proc). It prints every round's raw figures, then per case the
median and the spread (min-max) of the paired ratios wasmetool/Envoy of the same round,
then the time to ready of `wasmetool run` with a cold and a warm module cache.

    .venv/bin/python bench/run_vs_envoy.py [--rounds 3] [--duration 5] [--connections 32]
        [--cases header-keepalive,body-close,...] [--json out.json] [--starts 0]

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

# The header filter of envoy_probe.md: on response headers, add "hello: world" (ABI 0.2.1).
# It is the README's example filter, so the bench measures what a user runs first.
FILTER_WAT_PATH = Path(__file__).resolve().parent.parent / "examples" / "hello.wat"
# The body filter: remove content-length, buffer the response body, upper-case it.
BODY_WAT_PATH = Path(__file__).resolve().parent / "upper_body.wat"
FILTERS = {"header": FILTER_WAT_PATH, "body": BODY_WAT_PATH}
CONNECTION_MODES = ("keepalive", "close")
ALL_CASES = [f"{f}-{c}" for f in FILTERS for c in CONNECTION_MODES]


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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


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


def start_wasmetool(workdir: Path, wasm: Path | str, upstream: int, home: Path,
                    name: str = "wasmetool run") -> tuple[Proc, float]:
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
    return Proc(name, process, port), ready


def check_filter(port: int, kind: str) -> None:
    """The filter really ran: the header filter's header, the body filter's upper case."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        body = resp.read()
        if kind == "header" and resp.headers.get("hello") != "world":
            raise RuntimeError(f"port {port}: response lacks 'hello: world' ({dict(resp.headers)})")
        if kind == "body" and body != b"OK":
            raise RuntimeError(f"port {port}: body {body!r} was not rewritten to b'OK'")


WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(port: int, duration: int, connections: int, close: bool = False) -> dict[str, float]:
    extra = ["-H", "Connection: close"] if close else []
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          *extra, f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
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


def measure(proc: Proc, duration: int, connections: int, warmup: int,
            close: bool = False) -> dict[str, float]:
    wrk(proc.port, warmup, connections, close)
    pid = proc.process.pid
    user0, sys0 = cpu_seconds(pid)
    result = wrk(proc.port, duration, connections, close)
    user1, sys1 = cpu_seconds(pid)
    cpu = (user1 - user0) + (sys1 - sys0)
    requests = max(result["requests"], 1.0)
    result["cpu_pct"] = 100.0 * cpu / duration
    result["cpu_us"] = 1e6 * cpu / requests
    result["sys_us"] = 1e6 * (sys1 - sys0) / requests
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


def spread(values: list[float]) -> str:
    """median [min-max] of the values."""
    return (f"{statistics.median(values):.2f}x [{min(values):.2f}-{max(values):.2f}]"
            if values else "-")


def summarize(rows: list[dict[str, Any]], cases: list[str]) -> list[dict[str, Any]]:
    """Per case: medians of each proxy's figures and the paired ratios of each round."""
    out = []
    for case in cases:
        ours = {r["round"]: r for r in rows if r["case"] == case and r["proxy"] == "wasmetool"}
        envoy = {r["round"]: r for r in rows if r["case"] == case and r["proxy"] == "envoy"}
        rounds = sorted(set(ours) & set(envoy))
        if not rounds:
            continue
        entry: dict[str, Any] = {"case": case, "rounds": len(rounds)}
        for key in ("rps", "p50", "p99", "cpu_us"):
            entry[f"wasmetool_{key}"] = statistics.median(ours[n][key] for n in rounds)
            entry[f"envoy_{key}"] = statistics.median(envoy[n][key] for n in rounds)
            entry[f"ratios_{key}"] = [ours[n][key] / envoy[n][key] if envoy[n][key] else 0.0
                                      for n in rounds]
        out.append(entry)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--cases", default=",".join(ALL_CASES),
                        help=f"comma-separated subset of {','.join(ALL_CASES)}")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    parser.add_argument("--starts", type=int, default=3,
                        help="start-time samples per case (0: skip the start-time part)")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown or not cases:
        print(f"error: unknown case {','.join(unknown) or '(none)'} "
              f"(choose from {','.join(ALL_CASES)})", file=sys.stderr)
        return 1
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    import wasmtime

    workdir = Path(tempfile.mkdtemp(prefix="wasmetool-bench-"))
    home = workdir / "home"
    kinds = sorted({c.split("-")[0] for c in cases}, key=list(FILTERS).index)
    wasm_files: dict[str, Path] = {}
    for kind in kinds:
        wasm_files[kind] = workdir / f"{kind}.wasm"
        wasm_files[kind].write_bytes(wasmtime.wat2wasm(FILTERS[kind].read_text()))
    procs: list[Proc] = []
    try:
        upstream, _ = start_envoy(workdir, "upstream", None, None)
        procs.append(upstream)
        proxies: dict[str, dict[str, Proc]] = {}
        for kind in kinds:
            envoy, _ = start_envoy(workdir, f"envoy-{kind}", upstream.port, wasm_files[kind])
            procs.append(envoy)
            ours, _ = start_wasmetool(workdir, wasm_files[kind], upstream.port, home,
                                      f"wasmetool-{kind}")
            procs.append(ours)
            check_filter(envoy.port, kind)
            check_filter(ours.port, kind)
            proxies[kind] = {"envoy": envoy, "wasmetool": ours}
        load = os.getloadavg()[0]
        print(f"cases: {', '.join(cases)}; upstream: Envoy direct_response 'ok'; load: wrk -t1 "
              f"-c{args.connections} -d{args.duration}s after {args.warmup}s warm-up; "
              f"load average at start {load:.2f}\n")
        header = (f"{'round':>5} {'case':<16} {'proxy':<9} {'req/s':>9} {'p50 ms':>7} "
                  f"{'p99 ms':>7} {'CPU %':>6} {'µs CPU/req':>10} {'of it sys':>9} {'errors':>6}")
        print(header)
        print("-" * len(header))
        rows: list[dict[str, Any]] = []
        for round_no in range(1, args.rounds + 1):
            order = ("envoy", "wasmetool") if round_no % 2 else ("wasmetool", "envoy")
            for case in cases:
                kind, mode = case.split("-")
                for name in order:
                    result = measure(proxies[kind][name], args.duration, args.connections,
                                     args.warmup, close=mode == "close")
                    row = {"round": round_no, "case": case, "proxy": name, **result}
                    rows.append(row)
                    print(f"{round_no:>5} {case:<16} {name:<9} {result['rps']:>9.0f} "
                          f"{result['p50']:>7.2f} {result['p99']:>7.2f} {result['cpu_pct']:>6.0f} "
                          f"{result['cpu_us']:>10.1f} {result['sys_us']:>9.1f} {result['errors']:>6.0f}",
                          flush=True)
        for kind in kinds:
            proxies[kind]["wasmetool"].stop()
            proxies[kind]["envoy"].stop()

        summary = summarize(rows, cases)
        print(f"\nmedians over {args.rounds} rounds; ratio = wasmetool / envoy of the same round, "
              "median [min-max]")
        print(f"{'case':<16} {'req/s ours':>10} {'envoy':>8} {'req/s ratio':>19} "
              f"{'p99 ratio':>19} {'CPU µs ours':>11} {'envoy':>6} {'CPU ratio':>19}")
        for e in summary:
            print(f"{e['case']:<16} {e['wasmetool_rps']:>10.0f} {e['envoy_rps']:>8.0f} "
                  f"{spread(e['ratios_rps']):>19} {spread(e['ratios_p99']):>19} "
                  f"{e['wasmetool_cpu_us']:>11.1f} {e['envoy_cpu_us']:>6.1f} "
                  f"{spread(e['ratios_cpu_us']):>19}")
        print("targets: req/s ratio >= 1.0 (stretch 1.3), p99 ratio <= 1.0, CPU ratio <= 1.0")
        if args.json is not None:
            args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                             "rows": rows, "summary": summary}, indent=1))

        if args.starts <= 0:
            return 0
        wasm = wasm_files[kinds[0]]
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
