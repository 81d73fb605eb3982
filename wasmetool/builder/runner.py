"""Running compilers: their output reaches the user exactly as they printed it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from wasmetool.builder.base import BuildFailed
from wasmetool.errors import WasmetoolError


class SubprocessRunner:
    """The framework's :class:`~wasmetool.builder.base.CommandRunner`.

    stdout and stderr of the command are merged and written to ``sink``
    (stderr by default, so ``-o json`` on stdout stays clean). With
    ``buffered=True`` (a spinner is on screen) they are kept and written by
    :meth:`flush` once the spinner is gone. ``commands`` records what ran.
    """

    def __init__(self, sink: TextIO | None = None, buffered: bool = False) -> None:
        self.sink = sink
        self.buffered = buffered
        self.pending: list[str] = []
        self.commands: list[list[str]] = []

    def _write(self, text: str) -> None:
        if self.buffered:
            self.pending.append(text)
            return
        sink = self.sink or sys.stderr
        sink.write(text)
        sink.flush()

    def write(self, text: str) -> None:
        """Show ``text`` as build output (used for container logs as well)."""
        self._write(text)

    def flush(self) -> None:
        text = "".join(self.pending)
        self.pending.clear()
        if text:
            sink = self.sink or sys.stderr
            sink.write(text)
            sink.flush()

    def __call__(self, argv: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str] | None = None) -> None:
        command = [str(a) for a in argv]
        self.commands.append(command)
        full_env = {**os.environ, **(env or {})}
        try:
            process = subprocess.Popen(command, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise WasmetoolError(f"cannot run {command[0]}: not found",
                                 "install it or use --toolchain container") from None
        except PermissionError:
            raise WasmetoolError(f"cannot run {command[0]}: permission denied") from None
        assert process.stdout is not None
        with process.stdout:
            for line in iter(process.stdout.readline, b""):
                self._write(line.decode("utf-8", errors="replace"))
        code = process.wait()
        if code != 0:
            raise BuildFailed(
                f"{_tool_name(command)} exited with status {code}",
                "its messages are shown above",
            )


def _tool_name(command: list[str]) -> str:
    """`go`, or `asc` for `node .../asc.js` (name the compiler, not its interpreter)."""
    name = Path(command[0]).name
    if name in ("node", "nodejs") and len(command) > 1 and not command[1].startswith("-"):
        return Path(command[1]).stem
    return name
