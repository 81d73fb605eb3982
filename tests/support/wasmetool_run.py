"""Run ``wasmetool run`` as a child process, the same way ``envoy.py`` runs Envoy.

``plugin_file(setup)`` renders a :class:`~tests.support.plugins.ProxySetup` to
wasmetool's plugin file (docs/host_contract.md "Plugin file"), so a conformance
case written once runs through Envoy and through wasmetool with the same
filters, configuration, clusters and upstream.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.plugins import ProxySetup
from tests.support.ports import wait_until

REPO = Path(__file__).resolve().parents[2]
# The line `wasmetool run` prints once it serves, e.g.
# "listening on http://127.0.0.1:41234 (upstream: ..., admin: http://127.0.0.1:41235)"
READY_LINE = re.compile(r"listening on \w+://127\.0\.0\.1:(\d+) \(.*?(?:admin: http://127\.0\.0\.1:(\d+))?\)")


def wasmetool_command() -> list[str]:
    """``.venv/bin/wasmetool`` if installed, else ``python -m wasmetool.cli.main``."""
    beside = Path(sys.executable).parent / "wasmetool"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "wasmetool.cli.main"]


def plugin_file(setup: ProxySetup) -> dict[str, Any]:
    """The wasmetool plugin file (as a dict) equivalent to ``envoy_bootstrap(setup)``."""
    data: dict[str, Any] = {"upstream": setup.upstream,
                            "generate_request_id": setup.generate_request_id}
    clusters = {**setup.clusters, **setup.grpc_clusters}
    if clusters:
        data["clusters"] = [{"name": name, "url": url, "timeout_ms": setup.cluster_timeout_ms}
                            for name, url in clusters.items()]
    if setup.http_filters:
        data["http_filters"] = [p.plugin_config() for p in setup.http_filters]
    if setup.network_filters:
        data["network_filters"] = [p.plugin_config() for p in setup.network_filters]
    if setup.singletons:
        data["singletons"] = [p.plugin_config() for p in setup.singletons]
    return data


@dataclass
class RunningWasmetool:
    """A started ``wasmetool run``: where it listens and what it printed."""

    process: subprocess.Popen[bytes]
    port: int
    admin_port: int | None
    log_path: Path
    plugins_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


@contextlib.contextmanager
def run_wasmetool(setup: ProxySetup, workdir: Path, *, log_level: str = "info",
                  admin: bool = False, extra_args: list[str] | None = None,
                  startup_timeout: float = 30.0) -> Iterator[RunningWasmetool]:
    """Start ``wasmetool run --plugins <file>`` for ``setup``; stop it (SIGINT, then kill).

    It listens on port 0 (admin too, or ``--admin off``); the ports are read from the
    line it prints once ready, so no port can be taken by someone else in between.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    plugins_path = workdir / "plugins.yaml"
    plugins_path.write_text(yaml.safe_dump(plugin_file(setup), sort_keys=False))
    log_path = workdir / "wasmetool.log"
    cmd = [*wasmetool_command(), "run", "--plugins", str(plugins_path),
           "--listen", "127.0.0.1:0", "--log-level", log_level,
           "--admin", "127.0.0.1:0" if admin else "off"]
    if setup.tcp:
        cmd += ["--tcp"]
    cmd += extra_args or []
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, cwd=workdir)
    found: list[re.Match[str]] = []
    try:
        def ready() -> bool:
            match = READY_LINE.search(log_path.read_text(errors="replace"))
            if match:
                found.append(match)
                return True
            if process.poll() is not None:
                raise RuntimeError(f"wasmetool run exited with {process.returncode}:\n"
                                   f"{log_path.read_text(errors='replace')[-4000:]}\n"
                                   f"command: {' '.join(cmd)}")
            return False
        try:
            wait_until(ready, startup_timeout, what="wasmetool run to print its address")
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{log_path.read_text(errors='replace')[-4000:]}") from exc
        port = int(found[0].group(1))
        admin_port = int(found[0].group(2)) if found[0].group(2) else None
        yield RunningWasmetool(process, port, admin_port, log_path, plugins_path)
    finally:
        _stop(process)
        log_file.close()


def _stop(process: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """Ctrl-C (SIGINT) as a user would; SIGKILL if it has not exited after ``grace`` s."""
    import signal

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
