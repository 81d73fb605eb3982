import pytest

from wasmetool.errors import WasmetoolError
from wasmetool.oci.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("repo/img:v0.1", "docker.io/repo/img:v0.1", "repo/img:v0.1"),
        ("img", "docker.io/library/img:latest", "img:latest"),
        ("docker.io/img", "docker.io/library/img:latest", "img:latest"),
        ("index.docker.io/library/img:1", "docker.io/library/img:1", "img:1"),
        ("localhost/f", "localhost/f:latest", "localhost/f:latest"),
        ("localhost:5000/f", "localhost:5000/f:latest", "localhost:5000/f:latest"),
        ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
        ("ghcr.io/org/filter:v1.2-rc_1", "ghcr.io/org/filter:v1.2-rc_1", "ghcr.io/org/filter:v1.2-rc_1"),
        (f"me/f@{DIGEST}", f"docker.io/me/f@{DIGEST}", f"me/f@{DIGEST}"),
        (f"me/f:v1@{DIGEST}", f"docker.io/me/f:v1@{DIGEST}", f"me/f:v1@{DIGEST}"),
        ("me/a.b-c__d", "docker.io/me/a.b-c__d:latest", "me/a.b-c__d:latest"),
    ],
)
def test_docker_normalisation(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar == familiar
    assert parse_reference(str(ref)) == ref


def test_digest_reference_has_no_default_tag() -> None:
    ref = parse_reference(f"me/f@{DIGEST}")
    assert ref.tag is None and ref.digest == DIGEST


@pytest.mark.parametrize(
    "text",
    ["", " me/f", "me/F", "me//f", "/f", "f/", "me/f:", "me/f:-x", "me/f@sha256:abc",
     "http://me/f", "me/f:" + "x" * 129, "me f", "me/f@md5:" + "a" * 32, "-f"],
)
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(WasmetoolError) as info:
        parse_reference(text)
    assert info.value.hint  # every refusal says what a good reference looks like
