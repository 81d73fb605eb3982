"""install.sh and the ~/.local/bin/wasmetool link: never silently replace another install.

install.sh runs for real, against a stand-in virtual environment whose install
stamp is current (so nothing is pip-installed), with HOME and the link's
directory in a temporary place.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\nexit 0\n")  # `import wasmetool` succeeds; nothing else runs
    python.chmod(0o755)
    want = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16] + "-"
    (venv / ".wasmetool-install-stamp").write_text(want + "\n")
    return {"venv": venv, "bin": tmp_path / "bin", "home": tmp_path / "home",
            "other": tmp_path / "other" / "bin" / "wasmetool"}


def _install(world: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(world["home"]), "WASMETOOL_VENV": str(world["venv"]),
           "WASMETOOL_BIN_DIR": str(world["bin"]), "PATH": f"{world['bin']}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(REPO / "install.sh"), *args], env=env, text=True,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result


def test_links_when_nothing_is_there_then_changes_nothing(world: dict[str, Path]) -> None:
    link = world["bin"] / "wasmetool"
    first = _install(world)
    assert os.readlink(link) == str(world["venv"] / "bin" / "wasmetool")
    assert f"linked from {link}" in first.stderr
    second = _install(world)
    assert "already linked" in second.stderr
    assert os.readlink(link) == str(world["venv"] / "bin" / "wasmetool")


def test_keeps_a_link_to_another_install_unless_forced(world: dict[str, Path]) -> None:
    link = world["bin"] / "wasmetool"
    world["bin"].mkdir()
    link.symlink_to(world["other"])
    kept = _install(world)
    assert os.readlink(link) == str(world["other"])
    assert f"kept {link}: it is a link to {world['other']}" in kept.stderr
    assert "--force" in kept.stderr

    forced = _install(world, "--force")
    assert os.readlink(link) == str(world["venv"] / "bin" / "wasmetool")
    assert f"replaced {link} (a link to {world['other']})" in forced.stderr


def test_keeps_a_file_and_a_directory(world: dict[str, Path]) -> None:
    link = world["bin"] / "wasmetool"
    world["bin"].mkdir()
    link.write_text("#!/bin/sh\necho a pip-installed wasmetool\n")
    kept = _install(world)
    assert link.read_text().startswith("#!/bin/sh") and not link.is_symlink()
    assert "a file that is not a link" in kept.stderr
    _install(world, "--force")
    assert link.is_symlink()

    link.unlink()
    link.mkdir()
    kept = _install(world, "--force")
    assert link.is_dir() and not link.is_symlink() and list(link.iterdir()) == []
    assert "is a directory" in kept.stderr


def test_help_names_force(world: dict[str, Path]) -> None:
    text = _install(world, "--help").stdout
    assert "--force" in text and "set -e" not in text and "#" not in text
