"""Toolchain images: names, build-output parsing, the missing-image message, flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmetool.builder import toolchain_images as ti
from wasmetool.builder.base import LANGUAGES
from wasmetool.errors import WasmetoolError


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_language_ships_a_dockerfile_from_a_configurable_base(language: str) -> None:
    text = ti.dockerfile(language).read_text()
    assert "ARG BASE=debian:bookworm-slim\nFROM ${BASE}\n" in text
    assert "wasmetool-version " in text  # the versions the image reports
    assert ti.image_name(language) == f"wasmetool/toolchain-{language}:{ti.image_tag(language)}"


def test_tag_follows_the_dockerfile_and_pinned_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    before = ti.image_tag("go")
    assert before == ti.image_tag("tinygo") and len(before) == 12
    monkeypatch.setattr(ti, "GO_VERSION", "1.99.0")
    assert ti.image_tag("tinygo") != before
    assert ti.build_args("tinygo")["GO_VERSION"] == "1.99.0"
    assert ti.build_args("cpp") == {}


def test_published_name_follows_the_registry_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ti.REGISTRY_ENV, raising=False)
    assert ti.published_name("as").startswith("ghcr.io/wasmetool/toolchain-assemblyscript:")
    monkeypatch.setenv(ti.REGISTRY_ENV, "127.0.0.1:5000/mirror/")
    assert ti.published_name("rust") == f"127.0.0.1:5000/mirror/toolchain-rust:{ti.image_tag('rust')}"


def test_build_output_gives_versions_and_image_id() -> None:
    shown: list[str] = []
    chunks = [{"stream": "Step 1/5 : FROM x\n"},
              {"stream": "wasmetool-version rustc=rustc 1.96.0  (ac68 2026-05-25)\n"
                         "wasmetool-version cargo=cargo 1.96.0\n"},
              {"aux": {"ID": "sha256:abc"}}, {"stream": "Successfully built abc\n"}]
    result = ti._stream(iter(chunks), shown.append)
    assert result.image_id == "sha256:abc"
    assert result.versions == {"rustc": "rustc 1.96.0 (ac68 2026-05-25)", "cargo": "cargo 1.96.0"}
    assert "".join(shown).startswith("Step 1/5")


def test_build_error_is_reported_as_a_failed_step() -> None:
    with pytest.raises(ti.BuildStreamError, match="The command .* returned a non-zero code: 100"):
        ti._stream(iter([{"error": "The command '/bin/sh -c apt-get' returned a non-zero code: 100"}]),
                   lambda _text: None)


def test_version_labels_are_one_quoted_instruction() -> None:
    text = ti._label_dockerfile("sha256:abc", {"go": 'go version "x" go1.26.8', "a": "b c"}).decode()
    lines = text.splitlines()
    assert lines[0] == "FROM sha256:abc" and len(lines) == 2
    assert lines[1] == ('LABEL "org.wasmetool.toolchain.version.a"="b c" '
                        '"org.wasmetool.toolchain.version.go"="go version \\"x\\" go1.26.8"')


class FakeImages:
    """The two calls ensure_image makes, answering as an engine without the image would."""

    def get(self, name: str):
        from docker.errors import ImageNotFound

        raise ImageNotFound(f"No such image: {name}")

    def pull(self, name: str):
        from docker.errors import APIError

        raise APIError(f"Get https://{name.split('/')[0]}/v2/: dial tcp: lookup: no such host")


class FakeClient:
    images = FakeImages()


def test_missing_image_that_cannot_be_pulled_names_the_build_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ti.REGISTRY_ENV, raising=False)
    shown: list[str] = []
    with pytest.raises(WasmetoolError) as caught:
        ti.ensure_image(FakeClient(), "go", shown.append)
    line = caught.value.one_line()
    assert line.startswith(f"no tinygo toolchain image: {ti.image_name('tinygo')} is not built here "
                           f"and {ti.published_name('tinygo')} could not be pulled")
    assert line.endswith("(build it with: wasmetool toolchain build tinygo [--base IMAGE])")
    assert shown == [f"pulling {ti.published_name('tinygo')} (no local {ti.image_name('tinygo')}) ...\n"]


def test_build_output_flag_is_a_format_only(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "p"
    assert cli("init", str(project), "--language", "cpp").code == 0
    result = cli("build", str(project), "-t", "x:v1", "-o", "yaml")
    assert result.code == 1
    assert result.err.strip() == "error: unknown output format 'yaml' (use -o text or -o json)"
    assert not (tmp_path / "yaml").exists()


def test_toolchain_commands_without_engine_are_one_clear_error(cli, tmp_path: Path,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    for args in (["toolchain", "list"], ["toolchain", "build", "cpp"], ["toolchain", "rm", "all"]):
        result = cli(*args)
        assert result.code == 1
        assert result.err.strip().splitlines() == [
            f"error: no Docker engine answers at unix://{tmp_path}/none.sock (no such socket) "
            "(start Docker or set DOCKER_HOST; or install the local toolchain and use "
            "--toolchain local)"]


def test_unknown_toolchain_language_lists_the_choices(cli) -> None:
    result = cli("toolchain", "build", "zig")
    assert result.code == 1 and "unknown language 'zig'" in result.err


def test_engine_is_found_as_the_docker_cli_finds_it(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST, else the current context of the Docker CLI config, else the default socket."""
    import hashlib
    import json

    from wasmetool.builder import container

    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"remote").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": "remote", "Metadata": {},
         "Endpoints": {"docker": {"Host": f"unix://{tmp_path}/ctx.sock", "SkipTLSVerify": False}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    (config / "config.json").write_text("{}")
    assert container.engine_address() == f"unix://{container.DEFAULT_SOCKET}"
    (config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    assert container.engine_address() == f"unix://{tmp_path}/ctx.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert container.engine_address() == "tcp://127.0.0.1:2375"
    monkeypatch.delenv("DOCKER_HOST")
    with pytest.raises(WasmetoolError, match=f"no Docker engine answers at unix://{tmp_path}/ctx.sock"):
        container.docker_client()


def test_build_help_lists_go_and_says_tinygo_runs_upstream_go(cli) -> None:
    result = cli("build", "--help")
    assert result.code == 0
    commands = result.out.split("Commands:", 1)[1]
    assert "\n  go " in commands and "\n  tinygo " in commands
    assert "tinygo = upstream Go" in " ".join(result.out.split())
