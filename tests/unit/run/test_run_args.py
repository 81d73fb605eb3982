"""`wasmetool run` refuses bad arguments with one line, before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmetool.cli.run import parse_address
from wasmetool.errors import WasmetoolError


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "f.wasm"
    path.write_bytes(b"\x00asm\x01\x00\x00\x00")
    return path


@pytest.mark.parametrize(("args", "needle"), [
    ([], "no filter given"),
    (["{m}", "--fail-open", "--fail-reload"], "--fail-open and --fail-reload exclude each other"),
    (["{m}", "--log-level", "loud"], "--log-level 'loud' is not a level"),
    (["--plugins", "{p}", "--config", "x"], "--config configure the module given on the command line"),
    (["{m}", "--listen", "localhost:http"], "--listen 'localhost:http': expected HOST:PORT"),
    (["{m}", "--listen", "127.0.0.1:70000"], "port must be 0-65535"),
    (["{m}", "--env", "NOVALUE"], "--env 'NOVALUE': expected KEY=VALUE"),
    (["{m}", "--cluster", "auth"], "--cluster 'auth': expected NAME=URL"),
    (["{m}", "--call-timeout-ms", "0"], "--call-timeout-ms must be positive"),
    (["{m}", "--concurrency", "0"], "--concurrency 0 is out of range"),
    (["{d}/absent.wasm"], "absent.wasm does not exist"),
    (["--plugins", "{p}", "--tcp", "--upstream", "127.0.0.1:1"], "--tcp runs network filters only"),
    (["{m}", "--tcp"], "--tcp needs an upstream"),
    (["{m}", "--upstream", "ftp://example.test"], "--upstream: unsupported scheme"),
])
def test_bad_arguments(cli, module: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    plugins = tmp_path / "p.yaml"
    plugins.write_text(f"http_filters:\n  - name: x\n    vm_config: {{code: {{local: "
                       f"{{filename: {module}}}}}}}\n")
    argv = [a.format(m=module, p=plugins, d=tmp_path) for a in args]
    result = cli("run", *argv, "--admin", "off")
    assert result.code == 1
    assert result.err.startswith("error: ") and needle in result.err, result.err


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:8080", "--listen") == ("127.0.0.1", 8080)
    assert parse_address(":9000", "--listen") == ("127.0.0.1", 9000)
    assert parse_address("9000", "--listen") == ("127.0.0.1", 9000)
    assert parse_address("[::1]:80", "--listen") == ("::1", 80)
    with pytest.raises(WasmetoolError):
        parse_address("[::1]80", "--listen")


def test_workers_refuse_a_port_another_process_shares_with_reuseport(cli, module: Path) -> None:
    # --concurrency binds SO_REUSEPORT listeners; a foreign one on the port must not be
    # joined silently (the kernel would split the traffic between the two processes)
    import socket

    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = cli("run", str(module), "--listen", f"127.0.0.1:{port}", "--admin", "off",
                     "--concurrency", "2")
    assert result.code == 1
    assert result.err.startswith("error: ") and "is already in use" in result.err, result.err
