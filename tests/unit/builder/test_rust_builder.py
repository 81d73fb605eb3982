"""The Rust builder: toolchain discovery, the cargo command, cache inputs, container spec."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wasmetool.builder import rust
from wasmetool.builder.base import CONTAINER_OUT, ContainerSpec
from wasmetool.builder.rust import RustBuilder, RustRoute, crate_lib_name
from wasmetool.errors import WasmetoolError

CDYLIB_TOML = """\
[package]
name = "my-filter"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]
"""


def write_crate(root: Path, manifest: str = CDYLIB_TOML) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(manifest)
    (root / "Cargo.lock").write_text("version = 4\n")
    (root / "src" / "lib.rs").write_text("pub fn f() {}\n")
    return root


def real_tool_dir(tmp_path: Path, *names: str) -> Path:
    """A directory holding symlinks to the real tools `names` (nothing else), for PATH."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for name in names:
        real = shutil.which(name, path="/usr/bin")
        assert real, f"{name} is not installed in /usr/bin"
        (directory / name).symlink_to(real)
    return directory


def test_no_rust_at_all_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(rust, "DEBIAN_RUSTC", str(tmp_path / "no-rustc"))
    hints = RustBuilder().missing_local_tools(tmp_path)
    assert len(hints) == 1
    assert hints[0].startswith("Rust for wasm32-wasip1")
    assert "rustup target add wasm32-wasip1" in hints[0] and "rustc-web" in hints[0]


def test_debian_rustc_without_linker_or_wasi_libc_names_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Real Debian rustc and cargo, but no wasm-ld on PATH and no wasi-libc.
    monkeypatch.setenv("PATH", str(real_tool_dir(tmp_path, "rustc", "cargo")))
    monkeypatch.setattr(rust, "WASI_LIBC_DIRS", (str(tmp_path / "no-wasi-libc"),))
    builder = RustBuilder()
    hints = builder.missing_local_tools(tmp_path)
    assert builder.route() is None
    text = "\n".join(hints)
    assert "wasm-ld" in text and "wasi-libc" in text
    with pytest.raises(WasmetoolError, match="no local Rust toolchain"):
        builder.build_local(write_crate(tmp_path / "crate"), tmp_path / "out.wasm",
                            lambda argv, *, cwd, env=None: None)


def test_debian_route_is_found_with_its_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only Debian's toolchain on PATH (as on a machine without rustup).
    monkeypatch.setenv("PATH", str(real_tool_dir(tmp_path, "rustc", "cargo", "wasm-ld")))
    monkeypatch.delenv("RUSTFLAGS", raising=False)
    route = RustBuilder().route()
    assert route is not None
    assert route.kind == "build-std" and route.target == "wasm32-wasip1"
    args = route.cargo_args()
    assert args[:4] == ["build", "--release", "--target", "wasm32-wasip1"]
    assert "-Zbuild-std=std,panic_abort" in args
    assert any(a.startswith("target.wasm32-wasip1.linker=") for a in args)
    assert any("native=/usr/lib/wasm32-wasi" in a for a in args)
    env = route.env()
    assert env["RUSTC_BOOTSTRAP"] == "1"
    assert env["RUSTC"] == route.rustc
    assert "RUSTFLAGS" not in env


def test_user_rustflags_keep_the_linker_search_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTFLAGS", "-C debuginfo=1")
    route = RustRoute("build-std", "/usr/bin/cargo", "/usr/bin/rustc", "wasm32-wasip1",
                      "/usr/bin/wasm-ld", "/usr/lib/wasm32-wasi")
    assert route.env()["RUSTFLAGS"] == (
        "-C debuginfo=1 -C link-self-contained=no -L native=/usr/lib/wasm32-wasi")


def test_prebuilt_route_is_a_plain_cargo_build() -> None:
    route = RustRoute("prebuilt-std", "cargo", "rustc", "wasm32-wasip1")
    assert route.cargo_args() == ["build", "--release", "--target", "wasm32-wasip1"]
    assert "RUSTC_BOOTSTRAP" not in route.env()


def test_target_name_follows_the_compiler_version() -> None:
    assert rust._target_for_release("1.96.0") == "wasm32-wasip1"
    assert rust._target_for_release("1.78.0") == "wasm32-wasip1"
    assert rust._target_for_release("1.77.2") == "wasm32-wasi"
    assert rust._target_for_release("") is None


def test_cargo_caches_live_in_wasmetool_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMETOOL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CARGO_HOME", raising=False)
    monkeypatch.delenv("CARGO_TARGET_DIR", raising=False)
    route = RustRoute("prebuilt-std", "cargo", "rustc", "wasm32-wasip1")
    env = RustBuilder().cargo_env(route)
    assert env["CARGO_HOME"] == str(tmp_path / "home" / "cache" / "rust" / "cargo-home")
    assert env["CARGO_TARGET_DIR"].startswith(str(tmp_path / "home" / "cache" / "rust" / "target"))
    # The user's own settings are respected.
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "my-cargo"))
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "my-target"))
    env = RustBuilder().cargo_env(route)
    assert "CARGO_HOME" not in env
    assert env["CARGO_TARGET_DIR"] == str(tmp_path / "my-target")


def test_cache_inputs_are_sources_manifests_and_config(tmp_path: Path) -> None:
    crate = write_crate(tmp_path / "crate")
    (crate / "src" / "greeting.txt").write_text("include_str! data")
    (crate / "build.rs").write_text("fn main() {}\n")
    (crate / ".cargo").mkdir()
    (crate / ".cargo" / "config.toml").write_text("[build]\n")
    (crate / "README.md").write_text("docs")
    (crate / "target" / "release").mkdir(parents=True)
    (crate / "target" / "release" / "stale.rs").write_text("")
    inputs = {p.relative_to(crate).as_posix() for p in RustBuilder().cache_inputs(crate)}
    assert inputs == {"Cargo.toml", "Cargo.lock", "build.rs", ".cargo/config.toml",
                      "src/lib.rs", "src/greeting.txt"}


def test_crate_lib_name(tmp_path: Path) -> None:
    assert crate_lib_name(write_crate(tmp_path / "a")) == "my_filter"
    named = CDYLIB_TOML.replace('[lib]\n', '[lib]\nname = "custom-lib"\n')
    assert crate_lib_name(write_crate(tmp_path / "b", named)) == "custom_lib"


@pytest.mark.parametrize(("manifest", "message"), [
    (None, "has no Cargo.toml"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n', "does not build a cdylib"),
    ('[workspace]\nmembers = ["a"]\n', "has no \\[package\\] name"),
    ("[package\n", "not valid TOML"),
])
def test_crate_problems_are_clear_errors(tmp_path: Path, manifest: str | None, message: str) -> None:
    tmp_path.joinpath("src").mkdir()
    if manifest is not None:
        (tmp_path / "Cargo.toml").write_text(manifest)
    with pytest.raises(WasmetoolError, match=message):
        crate_lib_name(tmp_path)


def test_container_spec(tmp_path: Path, wasmetool_home: Path) -> None:
    from wasmetool.builder.toolchain_images import image_name

    crate = write_crate(tmp_path / "crate")
    out_dir = tmp_path / "out"
    spec = RustBuilder().container_spec(crate, out_dir)
    assert isinstance(spec, ContainerSpec)
    assert spec.image == image_name("rust")
    script = spec.command[-1]
    assert spec.command[:2] == ["sh", "-c"]
    # The local build-std route's flags, in the image's Debian rustc-web.
    assert ("cargo build --release --target wasm32-wasip1 -Zbuild-std=std,panic_abort "
            "-Ztrim-paths --config 'profile.release.trim-paths=\"all\"' "
            "--config 'target.wasm32-wasip1.linker=\"wasm-ld-22\"'") in script
    assert "native=/usr/lib/wasm32-wasi" in script
    assert "/cache/target/wasm32-wasip1/release/my_filter.wasm /out/filter.wasm" in script
    assert spec.env["RUSTC_BOOTSTRAP"] == "1" and spec.env["RUSTC"] == "/usr/bin/rustc"
    assert spec.output == f"{CONTAINER_OUT}/filter.wasm"
    assert spec.host_output(out_dir) == out_dir / "filter.wasm"
    mounts = {target: (source, read_only) for source, target, read_only in spec.mounts}
    assert mounts["/src"] == (str(crate.resolve()), True)
    assert mounts["/out"] == (str(out_dir.resolve()), False)
    caches = wasmetool_home / "cache" / "container" / "rust"
    assert mounts["/cache/cargo-home"] == (str(caches / "cargo-home"), False)
    assert mounts["/cache/target"] == (str(caches / "target"), False)
    assert spec.user == f"{os.getuid()}:{os.getgid()}"
    argv = spec.docker_run_argv()
    assert argv[:3] == ["docker", "run", "--rm"] and spec.image in argv


def test_discovery_is_remembered_until_something_it_depends_on_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    calls: list[int] = []
    real_probe = rust._probe

    def counting_probe() -> dict:
        calls.append(1)
        return real_probe()

    monkeypatch.setattr(rust, "_probe", counting_probe)
    first = RustBuilder().toolchain_id()
    assert calls == [1]
    assert RustBuilder().toolchain_id() == first      # answered from the cache file
    assert calls == [1]
    os.utime(tools, ns=(1, 1))                          # e.g. a tool installed into PATH
    assert RustBuilder().toolchain_id() == first
    assert calls == [1, 1]
    monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + str(tmp_path))
    RustBuilder().missing_local_tools(tmp_path)
    assert calls == [1, 1, 1]
