"""Fixtures every test gets: an isolated WASMETOOL_HOME, and ways to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def wasmetool_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own store, cache and config (WASMETOOL_HOME overrides all)."""
    home = tmp_path_factory.mktemp("wasmetool-home")
    monkeypatch.setenv("WASMETOOL_HOME", str(home))
    return home


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `wasmetool ARGS...` in-process; returns exit code, stdout and stderr."""
    from wasmetool.cli.main import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def wasmetool_command() -> list[str]:
    exe = Path(sys.executable).parent / "wasmetool"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "wasmetool.cli.main"]


@pytest.fixture
def cli_process():
    """Run the installed `wasmetool` as a separate process (what a user runs)."""

    def run(*args: str, input: str | None = None, timeout: float = 120) -> Result:
        proc = subprocess.run(
            [*wasmetool_command(), *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            env=os.environ.copy(),
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
