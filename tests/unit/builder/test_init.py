"""`wasmetool init`: choices, defaults without a terminal, refusals, rendering."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from wasmetool.errors import WasmetoolError
from wasmetool.scaffold.init_project import InitRequest, init_project
from wasmetool.scaffold.render import project_name


def test_tinygo_project_is_rendered_with_name_and_root_id(cli, tmp_path: Path) -> None:
    target = tmp_path / "My Filter"
    result = cli("init", str(target), "--language", "go", "--platform", "envoy",
                 "--platform-version", "1.40", "--root-id", "my_root", "-o", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["name"] == "my-filter" and data["language"] == "tinygo"
    assert (target / "go.mod").read_text().startswith("module my-filter\n")
    config = json.loads((target / "runtime-config.json").read_text())
    assert config["config"]["rootIds"] == ["my_root"]
    assert config["type"] == "envoy_proxy"
    project = tomllib.loads((target / "wasmetool.toml").read_text())
    assert project == {"language": "tinygo", "platform": "envoy", "platform_version": "1.40",
                       "root_id": "my_root"}
    for path in target.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), path


def test_assemblyscript_project_has_locked_exact_versions(cli, tmp_path: Path) -> None:
    target = tmp_path / "as-filter"
    result = cli("init", str(target), "--language", "assemblyscript", "--disable-prompt")
    assert result.code == 0, result.err
    package = json.loads((target / "package.json").read_text())
    assert package["name"] == "as-filter"
    assert "asbuild" in package["scripts"]
    for version in package["devDependencies"].values():
        assert version[0].isdigit(), f"not an exact version: {version}"
    lock = json.loads((target / "package-lock.json").read_text())
    assert lock["name"] == "as-filter"
    assert 'registerRootContext' in (target / "assembly" / "index.ts").read_text()
    assert '"hello_root"' in (target / "assembly" / "index.ts").read_text()


def test_next_steps_are_printed(cli, tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "f"), "--language", "tinygo", "--disable-prompt")
    assert result.code == 0
    assert "wasmetool build -t f:v0.1.0" in result.out
    assert "wasmetool run f:v0.1.0" in result.out
    assert "wasmetool push" in result.out


def test_non_empty_directory_is_refused_without_force(cli, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = cli("init", str(target), "--language", "tinygo")
    assert result.code == 1
    assert "is not empty" in result.err and "--force" in result.err
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]

    forced = cli("init", str(target), "--language", "tinygo", "--force")
    assert forced.code == 0, forced.err
    assert (target / "keep.txt").read_text() == "mine"
    assert (target / "main.go").is_file()


def test_a_file_as_destination_is_refused(cli, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = cli("init", str(target), "--language", "tinygo", "--force")
    assert result.code == 1 and "not a directory" in result.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--language", "go", "--platform", "envoy", "--platform-version", "1.32"], "1.33"),
        (["--language", "tinygo", "--platform", "istio", "--platform-version", "1.24"], "1.25"),
        (["--language", "rust", "--platform", "istio", "--platform-version", "1.11"], "1.12"),
        (["--language", "assemblyscript", "--platform", "envoy", "--platform-version", "1.16"],
         "1.17"),
    ],
)
def test_impossible_platform_versions_are_refused(cli, tmp_path: Path, args: list[str],
                                                  expected: str) -> None:
    target = tmp_path / "p"
    result = cli("init", str(target), *args)
    assert result.code == 1
    assert f"--platform-version {expected} or newer" in result.err
    assert not target.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--language", "cobol"], "unknown language 'cobol'"),
        (["--language", "go", "--platform", "nginx"], "unknown platform 'nginx'"),
        (["--language", "go", "--platform-version", "latest"], "not a version line"),
        (["--language", "go", "--root-id", 'a"b'], "root id"),
    ],
)
def test_bad_values_are_refused(cli, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("init", str(tmp_path / "p"), *args)
    assert result.code == 1
    assert message in result.err
    assert not (tmp_path / "p").exists()


def test_platform_versions_are_normalised(cli, tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "p"), "--language", "rust", "--platform", "gloo",
                 "--platform-version", "1.17.x", "-o", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["platform_version"] == "1.17"


def test_without_a_terminal_missing_language_is_an_error_not_a_prompt(cli_process,
                                                                     tmp_path: Path) -> None:
    result = cli_process("init", str(tmp_path / "p"), input="", timeout=30)
    assert result.code == 1
    assert "no --language given and no terminal to ask on" in result.err
    assert "Traceback" not in result.err


def test_without_a_terminal_other_values_default(cli_process, tmp_path: Path) -> None:
    result = cli_process("init", str(tmp_path / "p"), "--language", "tinygo", "-o", "json",
                         input="", timeout=30)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["platform"], data["platform_version"], data["root_id"]) == (
        "istio", "1.28", "hello_root")


def test_prompting_asks_for_each_missing_value_in_order(tmp_path: Path) -> None:
    asked: list[str] = []
    answers = iter(["tinygo", "envoy", "1.36"])

    def choose(message: str, choices: list[tuple[str, str]], default: str | None) -> str:
        asked.append(message)
        answer = next(answers)
        assert answer in [value for value, _ in choices]
        return answer

    result = init_project(InitRequest(tmp_path / "p"), choose=choose)
    assert asked == ["Language of the filter:", "Platform it will run on:", "envoy version:"]
    assert (result.language, result.platform, result.platform_version) == ("tinygo", "envoy", "1.36")


def test_offered_go_versions_stop_at_the_sdk_minimum(tmp_path: Path) -> None:
    offered: list[str] = []

    def choose(message: str, choices: list[tuple[str, str]], default: str | None) -> str:
        if message.endswith("version:"):
            offered.extend(value for value, _ in choices)
            return default or choices[0][0]
        return "envoy"

    init_project(InitRequest(tmp_path / "p", language="go"), choose=choose)
    assert offered[0] == "1.40" and offered[-1] == "1.33"


def test_disable_prompt_never_asks(tmp_path: Path) -> None:
    def choose(*_: object) -> str:
        raise AssertionError("asked although prompting is disabled")

    with pytest.raises(WasmetoolError, match="no --language"):
        init_project(InitRequest(tmp_path / "p", prompt=False), choose=choose)
    result = init_project(InitRequest(tmp_path / "q", language="as", prompt=False), choose=choose)
    assert result.language == "assemblyscript" and result.platform == "istio"


@pytest.mark.parametrize(
    ("directory", "name"),
    [("My Filter", "my-filter"), ("42", "filter-42"), ("___", "filter"), ("a.b_c", "a-b-c")],
)
def test_project_names_are_valid_package_names(tmp_path: Path, directory: str, name: str) -> None:
    assert project_name(tmp_path / directory) == name
