"""Ctrl-C during a local build: the compiler's whole process tree stops, nothing is
stored or written, and wasmetool exits 130.

The "compiler" that never ends is the AssemblyScript project's own npm preinstall
script (real npm, real node), which records its pid so the test can see it die.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import wasmetool_command
from tests.support.ports import wait_until

pytestmark = pytest.mark.integration
NEVER_ENDING = ("node -e \"require('fs').writeFileSync(process.env.WASMETOOL_TEST_PIDFILE, "
                "String(process.pid)); setInterval(() => {}, 1000)\"")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ", 1)[1].startswith("Z"))


def test_ctrl_c_stops_the_compiler_and_exits_130(cli_process, tmp_path: Path,
                                                wasmetool_home: Path) -> None:
    project = tmp_path / "as-slow"
    assert cli_process("init", str(project), "--language", "assemblyscript",
                       "--disable-prompt").code == 0
    manifest = json.loads((project / "package.json").read_text())
    manifest["scripts"]["preinstall"] = NEVER_ENDING
    (project / "package.json").write_text(json.dumps(manifest, indent=2))
    pidfile = tmp_path / "compiler.pid"
    out = tmp_path / "never.wasm"
    process = subprocess.Popen(
        [*wasmetool_command(), "build", str(project), "-t", "test/interrupted:v1",
         "--toolchain", "local", "--out", str(out)],
        env={**os.environ, "WASMETOOL_TEST_PIDFILE": str(pidfile)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: pidfile.is_file() and pidfile.read_text().strip() != "", 120,
                   interval=0.2, what="the preinstall script")
        compiler = int(pidfile.read_text())
        assert alive(compiler)
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in err
    wait_until(lambda: not alive(compiler), 10, what="the compiler to stop")
    assert not out.exists()
    assert not any((wasmetool_home / "cache" / "build" / "work").iterdir())
    assert cli_process("inspect", "test/interrupted:v1").code == 1
