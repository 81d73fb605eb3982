"""WWW-Authenticate parsing, the Basic header, and hidden secrets in reprs."""

from __future__ import annotations

import base64

from wasmetool.registry.auth import basic_header, parse_challenge, repository_scope
from wasmetool.registry.credentials import Credentials


def test_bearer_challenge_with_quoted_commas() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:me/filter:pull,push"'
    )
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.params["service"] == "registry.example.com"
    assert challenge.params["scope"] == "repository:me/filter:pull,push"


def test_basic_challenge_realm_is_not_a_url() -> None:
    challenge = parse_challenge('Basic realm="basic-realm"')
    assert challenge is not None and challenge.scheme == "basic" and challenge.realm == "basic-realm"


def test_no_challenge() -> None:
    assert parse_challenge(None) is None and parse_challenge("") is None


def test_basic_header_and_scope() -> None:
    header = basic_header(Credentials("me", "s3cr:et"))
    assert base64.b64decode(header.split()[1]) == b"me:s3cr:et"
    assert repository_scope("a/b", push=True) == "repository:a/b:pull,push"
    assert repository_scope("a/b", push=False) == "repository:a/b:pull"


def test_credentials_never_show_the_password() -> None:
    value = Credentials("me", "hunter2-secret")
    assert "hunter2" not in repr(value) and "hunter2" not in str(value)
    assert "hunter2" not in f"{value}" and "hunter2" not in repr([value])
