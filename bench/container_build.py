"""Container builds next to local builds: cold and warm time per language, and
whether the two routes give the same module digest.

For each language, one project made by `wasmetool init`, then in a fresh
WASMETOOL_HOME per route (so wasmetool's own caches start empty):

* cold - first `wasmetool build --no-cache` (container: empty cargo/Go/npm caches
         under the home; local: the cargo home and target are under the home too,
         Go and npm use the machine's own caches as they are);
* warm - `wasmetool build --no-cache` again: dependencies and std cached, the
         filter recompiled (a build-cache hit would take ~0.3 s on either route);
* digest - the wasm digests of the local and the container build.

Needs a Docker engine with the toolchain images (`wasmetool toolchain build all`)
and the local toolchains. Usage: DOCKER_HOST=... .venv/bin/python bench/container_build.py [LANGUAGE ...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGUAGES = ("cpp", "rust", "tinygo", "assemblyscript")


def wasmetool() -> list[str]:
    exe = Path(sys.executable).parent / "wasmetool"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "wasmetool.cli.main"]


def build(project: Path, home: Path, toolchain: str, tag: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*wasmetool(), "build", str(project), "-t", tag, "--toolchain",
                           toolchain, "--no-cache", "-o", "json"], capture_output=True, text=True,
                          env={**os.environ, "WASMETOOL_HOME": str(home)})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{toolchain} build of {project} failed:\n{done.stderr[-3000:]}")
    return elapsed, json.loads(done.stdout)["wasmDigest"]


def main(languages: list[str]) -> None:
    print(f"{'language':<16}{'local cold':>11}{'local warm':>11}{'ctr cold':>10}{'ctr warm':>10}"
          "  same digest")
    with tempfile.TemporaryDirectory(prefix="bench-container-") as tmp:
        root = Path(tmp)
        for language in languages:
            project = root / f"{language}-bench"
            subprocess.run([*wasmetool(), "init", str(project), "--language", language,
                            "--disable-prompt"], check=True, capture_output=True,
                           env={**os.environ, "WASMETOOL_HOME": str(root / "init")})
            times: dict[str, tuple[float, float]] = {}
            digests: dict[str, set[str]] = {}
            for route in ("local", "container"):
                home = root / f"home-{language}-{route}"
                cold, first = build(project, home, route, f"bench/{language}:{route}")
                warm, second = build(project, home, route, f"bench/{language}:{route}-2")
                times[route] = (cold, warm)
                digests[route] = {first, second}
            same = ("yes" if digests["local"] == digests["container"] and len(digests["local"]) == 1
                    else f"no: local {sorted(digests['local'])} container {sorted(digests['container'])}")
            print(f"{language:<16}{times['local'][0]:>11.1f}{times['local'][1]:>11.1f}"
                  f"{times['container'][0]:>10.1f}{times['container'][1]:>10.1f}  {same}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(LANGUAGES))
