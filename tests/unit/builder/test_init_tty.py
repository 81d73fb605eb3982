"""`wasmetool init` in a real terminal (a pseudo-terminal): arrow-key prompts."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import wasmetool_command

DOWN, ENTER = b"\x1b[B", b"\r"


class Terminal:
    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the CLI
            os.execv(argv[0], argv)
        self.output = b""

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} on the terminal:\n{self.output[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:
                    break

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def close(self) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:
                    pass
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        raise AssertionError("wasmetool init did not finish")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_missing_values_are_chosen_with_arrow_keys(tmp_path: Path) -> None:
    target = tmp_path / "tty-filter"
    term = Terminal([*wasmetool_command(), "init", str(target)])
    term.wait_for("Language of the filter")
    term.send(DOWN * 3 + ENTER)          # cpp, rust, assemblyscript, -> tinygo
    term.wait_for("Platform it will run on")
    term.send(DOWN + ENTER)              # istio, -> envoy
    term.wait_for("envoy version")
    term.send(DOWN + ENTER)              # 1.40, -> 1.39
    assert term.close() == 0, term.output[-2000:]
    assert b"Created a tinygo filter 'tty-filter'" in term.output
    project = tomllib.loads((target / "wasmetool.toml").read_text())
    assert (project["language"], project["platform"], project["platform_version"]) == (
        "tinygo", "envoy", "1.39")
