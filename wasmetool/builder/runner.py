"""Running compilers: their output reaches the user exactly as they printed it."""

from __future__ import annotations

import os
import signal
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
            # Its own session: a Ctrl-C reaches wasmetool only, which then stops the
            # whole process group (cargo and its rustc, npm and its scripts) itself.
            process = subprocess.Popen(command, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       start_new_session=hasattr(os, "killpg"))
        except FileNotFoundError:
            raise WasmetoolError(f"cannot run {command[0]}: not found",
                                 "install it or use --toolchain container") from None
        except PermissionError:
            raise WasmetoolError(f"cannot run {command[0]}: permission denied") from None
        assert process.stdout is not None
        try:
            with process.stdout:
                for line in iter(process.stdout.readline, b""):
                    self._write(line.decode("utf-8", errors="replace"))
            code = process.wait()
        except BaseException:  # Ctrl-C (KeyboardInterrupt) or any other way out
            stop_process_group(process)
            raise
        if code != 0:
            raise BuildFailed(
                f"{_tool_name(command)} exited with status {code}",
                "its messages are shown above",
            )


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the command's process group, SIGKILL what is left after ``grace`` seconds."""
    if process.poll() is not None and not hasattr(os, "killpg"):
        return
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGTERM)
        else:  # pragma: no cover - Windows
            process.terminate()
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    if hasattr(os, "killpg"):
        try:  # children that ignored SIGTERM, or outlived their parent
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def _tool_name(command: list[str]) -> str:
    """`go`, or `asc` for `node .../asc.js` (name the compiler, not its interpreter)."""
    name = Path(command[0]).name
    if name in ("node", "nodejs") and len(command) > 1 and not command[1].startswith("-"):
        return Path(command[1]).stem
    return name
