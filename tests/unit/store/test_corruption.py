"""A blob altered on disk: list marks it, inspect explains it, verify reports it, and
nothing that reads it trusts it; building again repairs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wasmetool import paths
from wasmetool.store import Store

HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello.wasm"


@pytest.fixture
def stored(cli) -> dict[str, str]:
    assert cli("build", "precompiled", str(HELLO), "-t", "me/hello:v1").code == 0
    assert cli("build", "precompiled", str(HELLO), "-t", "me/other:v1", "--root-id", "x").code == 0
    entry = json.loads(cli("list", "-o", "json").out)[0]
    return {"manifest": entry["digest"], "module": entry["wasmDigest"]}


def _blob(digest: str) -> Path:
    return paths.store_dir() / "blobs" / "sha256" / digest.split(":", 1)[1]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_the_same_digest_everywhere(cli) -> None:
    built = cli("build", "precompiled", str(HELLO), "-t", "me/hello:v1")
    digest_line = next(line for line in built.out.splitlines() if line.startswith("digest "))
    manifest = digest_line.split()[1]
    assert "(manifest" in digest_line
    listed = cli("list").out.splitlines()
    assert listed[0].split() == ["NAME", "TAG", "SIZE", "DIGEST", "UPDATED"]
    assert listed[1].split()[4] == manifest.split(":")[1][:12]
    wide = cli("list", "--wide").out
    assert manifest in wide and "MODULE" in wide
    assert f"Digest:       {manifest}" in cli("inspect", "me/hello:v1").out
    assert json.loads(cli("list", "-o", "json").out)[0]["digest"] == manifest


def test_an_altered_module_is_marked_explained_and_refused(cli, stored: dict[str, str]) -> None:
    with _blob(stored["module"]).open("ab") as handle:
        handle.write(b"tampered")

    listed = cli("list")
    assert listed.code == 0
    header, *rows = listed.out.splitlines()
    assert header.split()[-1] == "STATUS"
    assert all(row.split()[-1] == "CORRUPT" for row in rows) and len(rows) == 2
    assert "failed their digest check" in listed.err and "wasmetool verify" in listed.err
    data = json.loads(cli("list", "-o", "json").out)
    assert {d["status"] for d in data} == {"corrupt"}
    assert data[0]["problems"] == [{"digest": stored["module"], "role": "module", "state": "corrupt"}]

    inspected = cli("inspect", "me/hello:v1")
    assert inspected.code == 1
    assert "Status:       CORRUPT" in inspected.out and stored["module"] in inspected.out
    assert "pull the image again" in inspected.out
    line = _one_error_line(inspected.err)
    assert "me/hello:v1 cannot be used" in line and "does not match its digest" in line

    verified = cli("verify")
    assert verified.code == 1
    assert f"me/hello:v1: the module blob {stored['module']} does not match its digest" in verified.out
    assert "2 of 2 image(s) cannot be used" in _one_error_line(verified.err)
    assert json.loads(cli("verify", "-o", "json").out)["ok"] is False

    # Nothing that reads the blob trusts it.
    with pytest.raises(Exception, match="corrupt"):
        Store.open().resolve("me/hello:v1").wasm_bytes()
    ran = cli("run", "me/hello:v1", "--listen", "127.0.0.1:0", "--admin", "off")
    assert ran.code == 1 and "corrupt" in _one_error_line(ran.err)

    # Building the same module again replaces the bad blob.
    assert cli("build", "precompiled", str(HELLO), "-t", "me/hello:v1").code == 0
    assert cli("verify").code == 0
    assert "STATUS" not in cli("list").out


def test_an_altered_manifest_does_not_break_list(cli, stored: dict[str, str]) -> None:
    _blob(stored["manifest"]).write_text('{"layers": []}')
    listed = cli("list")
    assert listed.code == 0
    rows = {row.split()[0]: row.split() for row in listed.out.splitlines()[1:]}
    assert rows["me/hello"][2] == "-" and rows["me/hello"][-1] == "CORRUPT"
    assert rows["me/other"][-1] == "ok"
    assert "manifest blob" in cli("inspect", "me/hello:v1").out
    removed = cli("rm", "me/hello:v1")  # the repair the hints suggest must work
    assert removed.code == 0, removed.err
    assert cli("verify").code == 0


def test_a_missing_blob_and_a_stray_corrupt_blob(cli, stored: dict[str, str]) -> None:
    _blob(stored["module"]).unlink()
    assert cli("list").out.splitlines()[1].split()[-2:] == ["MISSING", "BLOB"]
    assert "is missing" in cli("verify").out
    assert cli("build", "precompiled", str(HELLO), "-t", "me/hello:v1").code == 0
    stray = paths.store_dir() / "blobs" / "sha256" / ("0" * 64)
    stray.write_text("not what its name says")
    verified = cli("verify")
    assert verified.code == 1 and "unused blob" in verified.out
    assert "wasmetool prune" in _one_error_line(verified.err)
    cli("prune")
    assert cli("verify").code == 0


def test_verify_named_images(cli, stored: dict[str, str]) -> None:
    result = cli("verify", "me/other:v1")
    assert result.code == 0
    assert result.out.splitlines() == ["me/other:v1: ok",
                                       "1 image(s) checked, every blob matches its digest"]
    assert "no image me/nope:v1" in _one_error_line(cli("verify", "me/nope:v1").err)
