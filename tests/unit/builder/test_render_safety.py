"""Template rendering never writes outside the project directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wasmetool.errors import WasmetoolError
from wasmetool.scaffold.init_project import InitRequest, init_project
from wasmetool.scaffold.render import TemplateFile, render


def _fake_templates(root: Path, files: dict[str, str]) -> Path:
    language_dir = root / "tinygo"
    for relative, text in files.items():
        path = language_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_placeholders_in_paths_and_text(tmp_path: Path) -> None:
    templates = _fake_templates(tmp_path / "t", {"{{NAME}}/x.txt": "n={{NAME}} r={{ROOT_ID}}"})
    result = init_project(InitRequest(tmp_path / "proj", language="tinygo", root_id="rid",
                                      prompt=False, templates_root=templates))
    assert (tmp_path / "proj" / "proj" / "x.txt").read_text() == "n=proj r=rid"
    assert result.files[-1].name == "wasmetool.toml"


def test_binary_files_are_copied_byte_for_byte(tmp_path: Path) -> None:
    data = b"\x00asm{{NAME}}\xff"
    dest = tmp_path / "d"
    dest.mkdir()
    render([TemplateFile("blob.bin", data)], dest, {"{{NAME}}": "zzz"})
    assert (dest / "blob.bin").read_bytes() == data


@pytest.mark.parametrize("relative", ["../escape.txt", "/tmp/abs.txt", "a/../../b.txt",
                                      "a//b.txt", "./x", "a\\..\\b"])
def test_paths_leaving_the_destination_are_refused_before_writing(tmp_path: Path,
                                                                  relative: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    files = [TemplateFile("ok.txt", b"fine"), TemplateFile(relative, b"evil")]
    with pytest.raises(WasmetoolError, match="outside"):
        render(files, dest, {})
    assert list(dest.iterdir()) == []  # nothing written, not even the good file
    assert not (tmp_path / "escape.txt").exists()


def test_a_placeholder_value_cannot_smuggle_a_traversal(tmp_path: Path) -> None:
    templates = _fake_templates(tmp_path / "t", {"{{ROOT_ID}}/x.txt": "x"})
    before = _all_files(tmp_path)
    with pytest.raises(WasmetoolError, match="outside"):
        init_project(InitRequest(tmp_path / "proj" / "inner", language="tinygo", root_id="..",
                                 prompt=False, templates_root=templates))
    assert not (tmp_path / "proj" / "x.txt").exists()
    assert _all_files(tmp_path) == before


def test_symlinks_in_a_template_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_text("do not copy")
    templates = _fake_templates(tmp_path / "t", {"main.go": "package main"})
    os.symlink(outside, templates / "tinygo" / "link.txt")
    with pytest.raises(WasmetoolError, match="non-regular file"):
        init_project(InitRequest(tmp_path / "proj", language="tinygo", prompt=False,
                                 templates_root=templates))
    assert not (tmp_path / "proj" / "link.txt").exists()


def test_symlinked_directories_in_a_template_are_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    templates = _fake_templates(tmp_path / "t", {"main.go": "package main"})
    os.symlink(tmp_path / "elsewhere", templates / "tinygo" / "sub")
    with pytest.raises(WasmetoolError, match="symlink"):
        init_project(InitRequest(tmp_path / "proj", language="tinygo", prompt=False,
                                 templates_root=templates))


def test_a_symlink_already_in_the_destination_is_not_followed_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "proj"
    dest.mkdir()
    os.symlink(outside, dest / "sub")
    templates = _fake_templates(tmp_path / "t", {"sub/file.txt": "x"})
    with pytest.raises(WasmetoolError, match="outside"):
        init_project(InitRequest(dest, language="tinygo", prompt=False, force=True,
                                 templates_root=templates))
    assert list(outside.iterdir()) == []
