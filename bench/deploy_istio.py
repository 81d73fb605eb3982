#!/usr/bin/env python3
"""Time of `wasmetool deploy istio` against the test API server, and of a re-deploy
that changes nothing.

Starts what the deploy tests start (etcd + kube-apiserver v1.37.2 with the CRDs,
a docker-registry on 127.0.0.1), pushes examples/hello.wasm, then times the CLI as a
user runs it (a separate process, Python start-up included):

  create     deploy istio REF --id hello -n bench-N -l app=web --config '{"a":1}'
             (a fresh namespace each round: the WasmPlugin is created)
  unchanged  the same command again (the server reports no change)
  legacy     deploy istio REF --id hello -n bench-N -l app=web --legacy (ConfigMap,
             EnvoyFilter, one Deployment annotated), then its unchanged re-run

The same two commands are also timed in-process (``wasmetool.cli.main.main``, imports
already done), which leaves the API server and registry round trips.

Prints every raw figure and the median of --repeat rounds.

Run: .venv/bin/python bench/deploy_istio.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.kube import start_cluster  # noqa: E402
from tests.support.registry import start_registry  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    env = {**os.environ, "WASMETOOL_HOME": str(work / "home")}
    wasmetool = str(REPO / ".venv" / "bin" / "wasmetool")
    cluster = start_cluster(work / "kube")
    registry = start_registry(work / "registry")
    try:
        ref = f"{registry.host}/bench/hello:v1"
        subprocess.run([wasmetool, "build", "precompiled", str(REPO / "examples" / "hello.wasm"),
                        "-t", ref], check=True, env=env, capture_output=True)
        subprocess.run([wasmetool, "push", ref], check=True, env=env, capture_output=True)
        figures: dict[str, list[float]] = {"create": [], "unchanged": [], "legacy create": [],
                                           "legacy unchanged": [], "in-process create": [],
                                           "in-process unchanged": []}
        os.environ["WASMETOOL_HOME"] = env["WASMETOOL_HOME"]
        import contextlib
        import io

        from wasmetool.cli.main import main as wasmetool_main

        def in_process(argv: list[str]) -> float:
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                code = wasmetool_main(argv)
            if code != 0:
                raise SystemExit(f"in-process {' '.join(argv)} failed")
            return time.perf_counter() - start
        for round_ in range(args.repeat):
            ns = f"bench-{round_}"
            cluster.create_namespace(ns)
            cluster.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}}})
            cmd = [wasmetool, "deploy", "istio", ref, "--id", "hello", "-n", ns, "-l", "app=web",
                   "--config", '{"a":1}', "--kubeconfig", str(cluster.kubeconfig)]
            figures["create"].append(timed(cmd, env))
            figures["unchanged"].append(timed(cmd, env))
            legacy = [*cmd[:5], "legacy", *cmd[6:], "--legacy"]
            figures["legacy create"].append(timed(legacy, env))
            figures["legacy unchanged"].append(timed(legacy, env))
            quick = [*cmd[1:5], "quick", *cmd[6:]]
            figures["in-process create"].append(in_process(quick))
            figures["in-process unchanged"].append(in_process(quick))
        print(f"command: {' '.join(cmd[1:]).replace(str(cluster.kubeconfig), 'KUBECONFIG')}")
        print(f"load average at end: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
        for name, values in figures.items():
            raw = ", ".join(f"{v:.3f}" for v in values)
            print(f"{name:20s} median {statistics.median(values):.3f} s   raw: {raw}")
    finally:
        registry.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
