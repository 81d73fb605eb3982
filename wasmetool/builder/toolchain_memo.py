"""Remember what a builder found out about the local toolchain.

Finding a toolchain runs compilers (0.1-0.2 s), which would dominate a
build-cache hit. A builder's probe result is kept in the cache directory with
the state (mtime, size, inode) of every path it depends on — PATH directories
(a tool installed or removed changes them), compilers, libraries — and the
environment variables that steer it. Any change there runs the probe again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from typing import Any

from wasmetool import paths
from wasmetool.store.files import atomic_write


def stat_token(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "absent"
    return f"{st.st_mtime_ns}/{st.st_size}/{st.st_ino}"


def path_and_tools(tools: Iterable[str]) -> list[str]:
    """Every PATH directory plus the real files of ``tools`` as found on PATH."""
    watched = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for name in tools:
        found = shutil.which(name)
        if found:
            watched.append(os.path.realpath(found))
    return watched


def remembered(
    name: str,
    env_names: Iterable[str],
    watched_paths: Callable[[], list[str]],
    probe: Callable[[], dict[str, Any]],
    code_file: str,
) -> dict[str, Any]:
    """``probe()``, answered from the cache while nothing it depends on changed.

    The probe's result may list more paths to watch under "looked_at".
    """
    file = paths.cache_dir() / "toolchains" / f"{name}.json"
    env = {key: os.environ.get(key, "") for key in env_names}
    env["builder code"] = stat_token(code_file)  # a new wasmetool probes again
    try:
        saved = json.loads(file.read_text())
        if saved["env"] == env and all(stat_token(path) == token
                                       for path, token in saved["watched"].items()):
            return dict(saved["probe"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    before = {path: stat_token(path) for path in watched_paths()}
    result = probe()
    watched = {**before, **{path: stat_token(path) for path in result.get("looked_at", [])}}
    try:
        atomic_write(file, json.dumps({"env": env, "watched": watched, "probe": result}).encode())
    except OSError:
        pass  # a read-only cache only costs the next build the probe again
    return result
