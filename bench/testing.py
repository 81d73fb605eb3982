"""Speed of the test harness (wasmetool.testing and `wasmetool test`).

Prints:
* full HTTP request lifecycles per second through ``HttpEmulator.request`` (context
  create, request headers, upstream response headers with the filter's
  proxy_add_header_map_value, log, done, delete) for the header-adding filter
  examples/hello.wasm, on one core: with the decoded trace off, and on (the default);
* the wall time of ``wasmetool test`` (a subprocess, as CI runs it) on a generated file
  of 100 cases for the same filter, after one warm-up run so the module compile is
  answered by the compiled-module cache; and the runner's own time for the cases.

Targets (issue 10): >= 20,000 lifecycles/s; < 2 s for the 100-case file (excluding compile).

Usage: .venv/bin/python bench/testing.py [--requests N] [--rounds N] [--cpu N]
(--rounds N: N runs of `wasmetool test`, 10 x N rounds of --requests lifecycles)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILTER = REPO / "examples" / "hello.wasm"
REQUEST = {":method": "GET", ":path": "/", ":authority": "example.com", ":scheme": "http"}


def lifecycles_per_second(requests: int, rounds: int, trace: bool) -> list[float]:
    """``rounds`` timings of ``requests`` lifecycles each (short rounds: on a shared machine
    the best round shows the harness, the median the machine)."""
    from wasmetool.testing import HttpEmulator

    emu = HttpEmulator(FILTER.read_bytes(), trace=trace)
    for _ in range(200):                                  # warm-up
        emu.request(REQUEST)
    assert emu.request(REQUEST).headers.get("hello") is not None, "the filter adds hello"
    out = []
    for _ in range(rounds):
        if trace:
            emu.tracer.events.clear()
        started = time.perf_counter()
        for _ in range(requests):
            emu.request(REQUEST)
        out.append(requests / (time.perf_counter() - started))
    emu.close()
    return out


def case_file(directory: Path, n: int) -> Path:
    lines = [f"filter: {FILTER}", "cases:"]
    for i in range(n):
        lines += [f"  - name: case {i}",
                  f"    request: {{path: /item/{i}, headers: {{x-case: '{i}'}}}}",
                  f"    response: {{status: 200, body: body-{i}}}",
                  "    expect:",
                  "      status: 200",
                  "      headers: {hello: {present: true}}",
                  f"      body: body-{i}",
                  f"      upstream: {{headers: {{x-case: '{i}'}}}}"]
    path = directory / "bench.test.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def wasmetool_test(path: Path, home: Path) -> tuple[float, float]:
    exe = Path(sys.executable).parent / "wasmetool"
    env = {**os.environ, "WASMETOOL_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run([str(exe), "test", str(path), "-o", "json"], capture_output=True,
                          text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"wasmetool test failed:\n{done.stdout}{done.stderr}")
    report = json.loads(done.stdout)
    assert report["passed"] == 100, report
    return wall, report["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="lifecycles per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core (default: the "
                    "first core this process may use)")
    args = ap.parse_args()
    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["WASMETOOL_HOME"] = str(home)
        print(f"machine: {os.cpu_count()} cores, pinned to core {cpu}; "
              f"filter {FILTER.relative_to(REPO)}")
        for trace in (False, True):
            runs = lifecycles_per_second(args.requests, args.rounds * 10, trace)
            print(f"lifecycles/s, trace {'on ' if trace else 'off'}: "
                  f"median {statistics.median(runs):,.0f}, best {max(runs):,.0f}, worst "
                  f"{min(runs):,.0f} ({len(runs)} rounds of {args.requests}; "
                  f"target >= 20,000)")
        path = case_file(Path(tmp), 100)
        wasmetool_test(path, home)                    # warm-up: compiles and caches the module
        walls, runners = [], []
        for _ in range(args.rounds):
            wall, runner = wasmetool_test(path, home)
            walls.append(wall)
            runners.append(runner)
        print(f"wasmetool test, 100 cases: wall median {statistics.median(walls):.3f} s "
              f"(runs: {', '.join(f'{w:.3f}' for w in walls)}); cases alone median "
              f"{statistics.median(runners):.3f} s (runs: "
              f"{', '.join(f'{r:.3f}' for r in runners)}); target < 2 s")


if __name__ == "__main__":
    main()
