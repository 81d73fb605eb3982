"""`wasmetool build --toolchain container` on a real Docker engine, all four languages.

The session starts Debian's dockerd on a private socket (tests/support/docker_engine.py;
its data root is cached under ~/.cache/wasmetool-ci, so a second run finds the images)
and builds the toolchain images with `wasmetool toolchain build --base` from a Debian
base made by mmdebstrap. The builds themselves run with a PATH holding no compiler at
all: what a user without local toolchains gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wasmetool_command
from tests.support.docker_engine import Engine, ci_cache, docker_engine
from tests.support.hello import hello_through_run
from tests.support.ports import free_port, wait_until
from wasmetool.builder.container import BUILD_LABEL
from wasmetool.builder.toolchain_images import find_local, image_name, list_images

pytestmark = pytest.mark.integration
LANGUAGES = ("cpp", "rust", "tinygo", "assemblyscript")
COMPILERS = ("clang", "clang++", "wasm-ld", "cargo", "rustc", "go", "node", "npm", "asc")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with docker_engine() as running:
        yield running


@pytest.fixture(scope="module")
def container_env(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the CLI: the engine, one shared home, and no compiler on PATH."""
    no_compilers = tmp_path_factory.mktemp("path-without-compilers")
    home = tmp_path_factory.mktemp("container-home")
    # The containers' dependency caches (cargo home and target with the compiled std,
    # Go modules, npm) live in the CI cache, so a second CI run does not rebuild std.
    shared = ci_cache() / "container-caches"
    shared.mkdir(parents=True, exist_ok=True)
    (home / "cache").mkdir()
    (home / "cache" / "container").symlink_to(shared)
    env = {**os.environ, "DOCKER_HOST": engine.host, "PATH": str(no_compilers),
           "WASMETOOL_HOME": str(home)}
    assert not any(shutil.which(tool, path=env["PATH"]) for tool in COMPILERS)
    for language in LANGUAGES:  # built once; later runs find them in the cached data root
        if find_local(engine.client, language) is None:
            subprocess.run([*wasmetool_command(), "toolchain", "build", language,
                            "--base", engine.base_image], env=env, check=True, timeout=1800,
                           stdout=subprocess.DEVNULL)
    for old in list_images(engine.client):  # images of an older wasmetool: reclaim the disk
        if not old.current:
            engine.client.images.remove(old.name)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*wasmetool_command(), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def init(env: dict[str, str], project: Path, language: str) -> Path:
    done = cli(env, "init", str(project), "--language", language, "--disable-prompt")
    assert done.returncode == 0, done.stderr
    return project


@pytest.mark.parametrize("language", LANGUAGES)
def test_init_build_in_container_inspect_and_run(container_env: dict[str, str], tmp_path: Path,
                                                 language: str) -> None:
    project = init(container_env, tmp_path / f"{language}-hello", language)
    tag = f"test/container-{language}:v1"
    wasm = tmp_path / "filter.wasm"
    started = time.monotonic()
    built = cli(container_env, "build", str(project), "-t", tag, "--toolchain", "container",
                "-o", "json", "--out", str(wasm))
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["toolchain"].startswith(f"container:{image_name(language)}@sha256:")
    assert report["cached"] is False and wasm.stat().st_size == report["size"]
    print(f"{language}: container build {time.monotonic() - started:.1f} s")

    inspected = cli(container_env, "inspect", tag, "-o", "json")
    assert inspected.returncode == 0, inspected.stderr
    assert "hello_root" in inspected.stdout

    reply = hello_through_run(tag, tmp_path / "run", home=Path(container_env["WASMETOOL_HOME"]))
    assert (reply.status, reply.hello) == (200, ["world"])

    # Reproducible: the same source compiled again in the container, same module.
    again = cli(container_env, "build", str(project), "-t", f"{tag}-again", "--toolchain",
                "container", "-o", "json", "--no-cache")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["wasmDigest"] == report["wasmDigest"]
    # Nothing the container wrote belongs to anyone but the user.
    owners = {path.stat().st_uid for path in [wasm, *project.rglob("*")]}
    assert owners == {os.getuid()}


def test_auto_picks_the_container_when_no_compiler_is_installed(
        container_env: dict[str, str], tmp_path: Path) -> None:
    project = init(container_env, tmp_path / "cpp-auto", "cpp")
    built = cli(container_env, "build", str(project), "-t", "test/auto:v1", "-o", "json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["toolchain"].startswith("container:wasmetool/toolchain-cpp:")


def test_toolchain_list_shows_versions_of_each_image(container_env: dict[str, str]) -> None:
    listed = cli(container_env, "toolchain", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    current = {item["language"]: item for item in json.loads(listed.stdout) if item["current"]}
    assert set(current) == set(LANGUAGES)
    assert current["cpp"]["versions"]["clang"].startswith("Debian clang version")
    assert current["rust"]["versions"]["rustc"].startswith("rustc 1.")
    assert current["tinygo"]["versions"]["go"].startswith("go version go1.")
    assert current["assemblyscript"]["versions"]["node"].startswith("v")
    text = cli(container_env, "toolchain", "list")
    assert text.returncode == 0 and "wasmetool/toolchain-rust:" in text.stdout


def test_missing_image_names_the_command_that_builds_it(container_env: dict[str, str],
                                                        engine: Engine, tmp_path: Path) -> None:
    """No local image and no reachable published one: the error says what to run."""
    name = image_name("cpp")
    image = engine.client.images.get(name)
    keep_repository, keep_tag = "wasmetool-ci/keep-cpp", name.split(":")[1]
    image.tag(keep_repository, keep_tag)  # the layers stay; only the name goes away
    engine.client.images.remove(name)
    try:
        project = init(container_env, tmp_path / "cpp-missing", "cpp")
        env = {**container_env,
               "WASMETOOL_TOOLCHAIN_REGISTRY": f"127.0.0.1:{free_port()}/wasmetool"}
        built = cli(env, "build", str(project), "-t", "test/missing:v1", "--toolchain", "container")
        assert built.returncode == 1
        last = built.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: no cpp toolchain image: {name} is not built here")
        assert "wasmetool toolchain build cpp" in last and "Traceback" not in built.stderr
    finally:
        image.tag(*name.split(":"))
        engine.client.images.remove(f"{keep_repository}:{keep_tag}")


def test_bad_base_is_one_clear_error(container_env: dict[str, str]) -> None:
    done = cli(container_env, "toolchain", "build", "cpp", "--base", "wasmetool-ci/no-such:base",
               timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: the base image wasmetool-ci/no-such:base is not on the engine and cannot be pulled")
    assert "Traceback" not in done.stderr


def test_ctrl_c_stops_and_removes_the_build_container(container_env: dict[str, str],
                                                      engine: Engine, tmp_path: Path) -> None:
    project = init(container_env, tmp_path / "as-slow", "assemblyscript")
    manifest = json.loads((project / "package.json").read_text())
    manifest["scripts"]["preinstall"] = "sleep 600"  # a build step that never ends
    (project / "package.json").write_text(json.dumps(manifest, indent=2))
    process = subprocess.Popen(
        [*wasmetool_command(), "build", str(project), "-t", "test/interrupted:v1",
         "--toolchain", "container", "--out", str(tmp_path / "never.wasm")],
        env=container_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def build_containers(**filters: str) -> list:
        return engine.client.containers.list(all=True, filters={"label": BUILD_LABEL, **filters})

    try:
        wait_until(lambda: bool(build_containers(status="running")), 120, interval=0.5,
                   what="the build container")
        time.sleep(3)  # npm is inside its preinstall script now
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert build_containers() == []
    assert not (tmp_path / "never.wasm").exists()
    work = Path(container_env["WASMETOOL_HOME"]) / "cache" / "build" / "work"
    assert not any(work.iterdir())
    assert cli(container_env, "inspect", "test/interrupted:v1").returncode == 1


def test_missing_image_is_pulled_from_the_published_registry(
        container_env: dict[str, str], engine: Engine, tmp_path: Path) -> None:
    """A real docker-registry on 127.0.0.1 stands in for the published toolchain images.

    Its storage lives in the CI cache, so the image is pushed once, not on every run.
    """
    from tests.support.registry import start_registry

    language = "assemblyscript"
    name = image_name(language)
    registry = start_registry(ci_cache() / "published-toolchains")
    try:
        published = f"{registry.host}/wasmetool/toolchain-{language}:{name.split(':')[1]}"
        manifests = registry.storage / "docker/registry/v2/repositories/wasmetool"
        if not (manifests / f"toolchain-{language}/_manifests/tags" / name.split(":")[1]).is_dir():
            engine.client.images.get(name).tag(published)
            for line in engine.client.images.push(published, stream=True, decode=True):
                assert "error" not in line, line
            engine.client.images.remove(published)
        keep = f"wasmetool-ci/keep-{language}:{name.split(':')[1]}"
        engine.client.images.get(name).tag(keep)  # layers stay: the pull is quick
        engine.client.images.remove(name)
        try:
            project = init(container_env, tmp_path / "as-pulled", language)
            env = {**container_env, "WASMETOOL_TOOLCHAIN_REGISTRY": f"{registry.host}/wasmetool"}
            built = cli(env, "build", str(project), "-t", "test/pulled:v1", "--toolchain",
                        "container", "-o", "json")
            assert built.returncode == 0, built.stderr
            assert f"pulling {published} (no local {name})" in built.stderr
            assert json.loads(built.stdout)["toolchain"].startswith(f"container:{name}@sha256:")
            assert find_local(engine.client, language) is not None
        finally:
            if find_local(engine.client, language) is None:
                engine.client.images.get(keep).tag(name)
            engine.client.images.remove(keep)
            with contextlib.suppress(Exception):
                engine.client.images.remove(published)
    finally:
        registry.stop()


def test_ctrl_c_during_toolchain_build_leaves_no_container_and_the_old_image(
        container_env: dict[str, str], engine: Engine) -> None:
    """An interrupted `toolchain build` stops the engine's build; the image in use stays."""
    import io

    before = engine.client.images.get(image_name("cpp")).id
    # A base with its own id, so the engine's build cache cannot answer the apt step.
    base = f"wasmetool-ci/interrupt-base:{int(time.time())}"
    engine.client.images.build(fileobj=io.BytesIO(
        f"FROM {engine.base_image}\nLABEL org.wasmetool.test.interrupt={base.split(':')[1]}\n"
        .encode()), tag=base, network_mode="none", rm=True, forcerm=True)
    process = subprocess.Popen(
        [*wasmetool_command(), "toolchain", "build", "cpp", "--base", base],
        env=container_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def apt_running() -> bool:
        return any("apt-get" in " ".join(c.attrs["Config"].get("Cmd") or [])
                   for c in engine.client.containers.list(filters={"status": "running"}))

    try:
        wait_until(apt_running, 120, interval=0.3, what="the apt-get build step")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        try:
            assert process.returncode == 130, err
            assert "Traceback" not in err
            wait_until(lambda: engine.client.containers.list(all=True) == [], 60, interval=0.5,
                       what="the build step's container to be removed")
            assert engine.client.images.get(image_name("cpp")).id == before
        finally:
            engine.client.images.remove(base, force=True)
            engine.client.images.prune(filters={"dangling": True})  # that build's cache


def test_building_an_image_again_answers_from_the_engine_cache(container_env: dict[str, str],
                                                              engine: Engine) -> None:
    before = engine.client.images.get(image_name("cpp")).id
    done = cli(container_env, "toolchain", "build", "cpp", "--base", engine.base_image, "-o", "json",
               timeout=300)
    assert done.returncode == 0, done.stderr
    (built,) = json.loads(done.stdout)
    assert built["image"] == image_name("cpp") and built["id"] == before
    assert built["versions"]["clang"].startswith("Debian clang version")
