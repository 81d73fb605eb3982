"""The plugin file parser: every field, every error (one WasmetoolError naming the field)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from wasmetool.errors import WasmetoolError
from wasmetool.host.plugin_file import (
    configuration_bytes,
    load_plugin_file,
    parse_cluster_flag,
    parse_document,
    parse_env_flags,
    parse_http_url,
    parse_tcp_address,
    plugin_from_flags,
    read_flag_value,
)

WASM = b"\x00asm\x01\x00\x00\x00"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
HTTP_WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
NETWORK_WASM = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
WASM_SERVICE = "type.googleapis.com/envoy.extensions.wasm.v3.WasmService"


@pytest.fixture
def wasm_dir(tmp_path: Path) -> Path:
    (tmp_path / "filter.wasm").write_bytes(WASM)
    return tmp_path


def plugin(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"name": "p", "root_id": "r",
                              "vm_config": {"code": {"local": {"filename": "filter.wasm"}}}}
    config.update(overrides)
    return config


def error_of(doc: Any, base: Path) -> str:
    with pytest.raises(WasmetoolError) as info:
        parse_document(doc, base)
    return info.value.one_line()


def test_full_plugin_config_every_field(wasm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_FROM_HOST", "host-value")
    doc = {
        "upstream": "http://127.0.0.1:8081",
        "clusters": [{"name": "auth", "url": "http://127.0.0.1:9000", "timeout_ms": 250}],
        "http_filters": [{
            "name": "add_header", "root_id": "my_root",
            "vm_config": {
                "vm_id": "shared", "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": "./filter.wasm"}},
                "configuration": {"@type": STRING_VALUE, "value": "vm-conf"},
                "environment_variables": {"host_env_keys": ["WT_FROM_HOST", "WT_ABSENT"],
                                          "key_values": {"K": "V", "N": 3}},
                "allow_precompiled": True,
            },
            "configuration": "plugin-conf",
            "failure_policy": "FAIL_RELOAD",
        }],
    }
    setup = parse_document(doc, wasm_dir)
    assert setup.upstream == "http://127.0.0.1:8081"
    assert [(c.name, c.url, c.timeout_ms) for c in setup.clusters] == [
        ("auth", "http://127.0.0.1:9000", 250)]
    [p] = setup.plugins
    assert (p.name, p.root_id, p.kind, p.failure_policy) == (
        "add_header", "my_root", "http", "fail_reload")
    assert p.configuration == b"plugin-conf"
    assert p.vm.code == WASM and p.vm.code_source == str(wasm_dir / "filter.wasm")
    assert (p.vm.vm_id, p.vm.runtime, p.vm.allow_precompiled) == (
        "shared", "envoy.wasm.runtime.v8", True)
    assert p.vm.configuration == b"vm-conf"
    assert p.vm.environment == {"WT_FROM_HOST": "host-value", "K": "V", "N": "3"}


def test_envoy_typed_config_wrappers(wasm_dir: Path) -> None:
    doc = {
        "http_filters": [
            {"name": "envoy.filters.http.wasm",
             "typed_config": {"@type": HTTP_WASM, "config": plugin(name="one")}},
            {"name": "envoy.filters.http.wasm",
             "typed_config": {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                              "type_url": HTTP_WASM, "value": {"config": plugin(name="two")}}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
        "network_filters": [{"name": "envoy.filters.network.wasm",
                             "typed_config": {"@type": NETWORK_WASM,
                                              "config": plugin(name="net")}}],
        "singletons": [{"name": "envoy.bootstrap.wasm",
                        "typed_config": {"@type": WASM_SERVICE, "singleton": True,
                                         "config": plugin(name="svc")}}],
    }
    setup = parse_document(doc, wasm_dir)
    assert [(p.name, p.kind) for p in setup.plugins] == [
        ("one", "http"), ("two", "http"), ("net", "network"), ("svc", "singleton")]


@pytest.mark.parametrize(("value", "expected"), [
    ("text", b"text"),
    ({"@type": STRING_VALUE, "value": "s"}, b"s"),
    ({"@type": "type.googleapis.com/google.protobuf.BytesValue",
      "value": base64.b64encode(b"\x00\x01").decode()}, b"\x00\x01"),
    ({"a": 1, "b": [True]}, b'{"a":1,"b":[true]}'),
    (None, b""),
])
def test_configuration_forms(value: Any, expected: bytes) -> None:
    assert configuration_bytes(value, "configuration") == expected


def test_inline_code(tmp_path: Path) -> None:
    doc = {"http_filters": [
        plugin(vm_config={"code": {"local": {"inline_bytes": base64.b64encode(WASM).decode()}}}),
        plugin(vm_config={"code": {"local": {"inline_string": "abc"}}}),
    ]}
    first, second = parse_document(doc, tmp_path).plugins
    assert first.vm.code == WASM and first.vm.code_source == "<inline_bytes>"
    assert second.vm.code == b"abc"


def test_fail_open_and_policies(wasm_dir: Path) -> None:
    doc = {"http_filters": [plugin(fail_open=True), plugin(failure_policy="FAIL_OPEN"),
                            plugin(failure_policy="FAIL_CLOSED", fail_open=True),
                            plugin(failure_policy="UNSPECIFIED"), plugin()]}
    policies = [p.failure_policy for p in parse_document(doc, wasm_dir).plugins]
    assert policies == ["fail_open", "fail_open", "fail_closed", "fail_closed", "fail_closed"]


@pytest.mark.parametrize(("suffix", "dump"), [
    (".yaml", lambda d: yaml.safe_dump(d)),
    (".yml", lambda d: yaml.safe_dump(d)),
    (".json", json.dumps),
    (".toml", None),
])
def test_file_formats_and_relative_paths(wasm_dir: Path, suffix: str, dump: Any) -> None:
    sub = wasm_dir / "conf"
    sub.mkdir()
    path = sub / f"plugins{suffix}"
    doc = {"upstream": "http://127.0.0.1:1", "http_filters": [
        plugin(vm_config={"code": {"local": {"filename": "../filter.wasm"}}})]}
    if dump is None:
        path.write_text('upstream = "http://127.0.0.1:1"\n[[http_filters]]\nname = "p"\n'
                        'root_id = "r"\n[http_filters.vm_config.code.local]\n'
                        'filename = "../filter.wasm"\n')
    else:
        path.write_text(dump(doc))
    setup = load_plugin_file(path)
    assert setup.plugins[0].vm.code == WASM
    assert setup.upstream == "http://127.0.0.1:1"


@pytest.mark.parametrize(("doc", "needle"), [
    ({"http_filters": [plugin(colour="red")]}, "http_filters[0].colour: unknown field"),
    ({"http_filter": []}, "http_filter: unknown field"),
    ({"http_filters": [{"name": "x"}]}, "http_filters[0].vm_config: is required"),
    ({"http_filters": [plugin(vm_config={})]}, "http_filters[0].vm_config.code: is required"),
    ({"http_filters": [plugin(vm_config={"code": {}})]},
     "vm_config.code: needs exactly one of local or remote"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "nope.wasm"}}})]},
     "vm_config.code.local.filename:"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {}}})]},
     "needs exactly one of filename, inline_bytes, inline_string"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"inline_bytes": "%%%"}}})]},
     "code.local.inline_bytes: not valid base64"),
    ({"http_filters": [plugin(vm_config={"code": {"remote": {"http_uri": {"uri": "http://x"}}}})]},
     "code.remote.sha256: is required"),
    ({"http_filters": [plugin(vm_config={"code": {"remote": {"sha256": "ab", "http_uri": {
        "uri": "http://x"}}}})]}, "code.remote.sha256: must be 64 hex digits"),
    ({"http_filters": [plugin(vm_config={"code": {"remote": {"sha256": "a" * 64}}})]},
     "code.remote.http_uri: expected a mapping"),
    ({"http_filters": [plugin(vm_config={"code": {"remote": {"sha256": "a" * 64, "http_uri": {
        "uri": "http://127.0.0.1:1/f.wasm", "timeout": "soon"}}}})]},
     "http_uri.timeout: invalid duration"),
    ({"http_filters": [plugin(vm_config={"code": {"remote": {"sha256": "a" * 64, "http_uri": {
        "uri": "ftp://h/f.wasm"}}}})]}, "http_uri.uri: unsupported URI"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "filter.wasm"}},
                                          "runtime": "envoy.wasm.runtime.null"})]},
     "vm_config.runtime: the null runtime"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "filter.wasm"}},
                                          "runtime": "quickjs"})]},
     "vm_config.runtime: unknown runtime"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "filter.wasm"}},
                                          "vm_id": 5})]},
     "vm_config.vm_id: expected a string, got an integer"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "filter.wasm"}},
                                          "allow_precompiled": "yes"})]},
     "vm_config.allow_precompiled: expected true or false"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "filter.wasm"}},
                                          "environment_variables": {"host_env_keys": ["A"],
                                                                    "key_values": {"A": "1"}}})]},
     "environment_variables.key_values.A: is also listed in host_env_keys"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "filter.wasm"}},
                                          "environment_variables": {"key_values": {"A": [1]}}})]},
     "environment_variables.key_values.A: expected a string"),
    ({"http_filters": [plugin(vm_config={"code": {"local": {"filename": "filter.wasm"}},
                                          "environment_variables": {"host_env_keys": "A"}})]},
     "environment_variables.host_env_keys: expected a list"),
    ({"http_filters": [plugin(configuration={"@type": "type.googleapis.com/x.Y"})]},
     "http_filters[0].configuration.@type: unsupported type"),
    ({"http_filters": [plugin(configuration=5)]}, "http_filters[0].configuration: expected a string"),
    ({"http_filters": [plugin(failure_policy="FAIL_LOUDLY")]}, "failure_policy: unknown policy"),
    ({"http_filters": [plugin(fail_open="true")]}, "http_filters[0].fail_open: expected true or false"),
    ({"http_filters": [{"name": "w", "typed_config": {"@type": NETWORK_WASM,
                                                      "config": plugin()}}]},
     "http_filters[0].typed_config.@type: unsupported filter type"),
    ({"http_filters": [{"name": "w", "typed_config": {"@type": HTTP_WASM, "config": plugin(),
                                                      "extra": 1}}]},
     "http_filters[0].typed_config.extra: unknown field"),
    ({"http_filters": "x"}, "http_filters: expected a list"),
    ({"http_filters": ["x"]}, "http_filters[0]: expected a mapping"),
    ({"clusters": [{"name": "a"}], "http_filters": [plugin()]}, "clusters[0].url: is required"),
    ({"clusters": [{"name": "a", "url": "ftp://h"}], "http_filters": [plugin()]},
     "clusters[0].url: unsupported scheme"),
    ({"clusters": [{"name": "a", "url": "http://h:1", "timeout_ms": -1}],
      "http_filters": [plugin()]}, "clusters[0].timeout_ms: expected a positive integer"),
    ({"clusters": [{"name": "a", "url": "http://h:1"}, {"name": "a", "url": "http://h:2"}],
      "http_filters": [plugin()]}, "clusters[1].name: duplicate cluster"),
    ({"upstream": 8080, "http_filters": [plugin()]}, "upstream: expected a string"),
    ({}, "plugin file has no wasm plugins"),
    ([1], "plugin file: expected a mapping"),
])
def test_errors_name_the_field(wasm_dir: Path, doc: Any, needle: str) -> None:
    assert needle in error_of(doc, wasm_dir)


@pytest.mark.parametrize(("name", "text", "needle"), [
    ("p.yaml", "http_filters: [", "invalid YAML at line"),
    ("p.json", "{", "invalid JSON at line 1"),
    ("p.toml", "x = [", "invalid TOML"),
    ("p.ini", "", "unknown extension"),
])
def test_unreadable_files(tmp_path: Path, name: str, text: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(WasmetoolError, match=needle.replace("[", r"\[")):
        load_plugin_file(path)


def test_missing_file_and_field_errors_name_the_file(wasm_dir: Path) -> None:
    with pytest.raises(WasmetoolError, match="does not exist"):
        load_plugin_file(wasm_dir / "absent.yaml")
    path = wasm_dir / "p.yaml"
    path.write_text(yaml.safe_dump({"http_filters": [plugin(bad=1)]}))
    with pytest.raises(WasmetoolError) as info:
        load_plugin_file(path)
    assert info.value.one_line().startswith(f"{path}: http_filters[0].bad: unknown field")


@contextlib.contextmanager
def serve_dir(directory: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def remote(uri: str, sha: str) -> dict[str, Any]:
    return plugin(vm_config={"code": {"remote": {"http_uri": {"uri": uri, "timeout": "5s"},
                                                 "sha256": sha}}})


def test_remote_code_checks_sha256(wasm_dir: Path) -> None:
    good = hashlib.sha256(WASM).hexdigest()
    with serve_dir(wasm_dir) as base:
        setup = parse_document({"http_filters": [remote(f"{base}/filter.wasm", good.upper())]},
                               wasm_dir)
        assert setup.plugins[0].vm.code == WASM
        assert setup.plugins[0].vm.code_source == f"{base}/filter.wasm"
        message = error_of({"http_filters": [remote(f"{base}/filter.wasm", "0" * 64)]}, wasm_dir)
        assert "code.remote.sha256: mismatch" in message and good in message
        message = error_of({"http_filters": [remote(f"{base}/absent.wasm", good)]}, wasm_dir)
        assert "HTTP 404" in message


def test_cli_flag_helpers(tmp_path: Path) -> None:
    assert read_flag_value("plain", "--config") == b"plain"
    (tmp_path / "c.json").write_bytes(b'{"k": 1}')
    assert read_flag_value(f"@{tmp_path / 'c.json'}", "--config") == b'{"k": 1}'
    assert read_flag_value(None, "--config") == b""
    with pytest.raises(WasmetoolError, match="--config @.*cannot read"):
        read_flag_value(f"@{tmp_path / 'none'}", "--config")
    assert parse_env_flags(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(WasmetoolError, match="expected KEY=VALUE"):
        parse_env_flags(["NOEQUALS"])
    cluster = parse_cluster_flag("auth=http://127.0.0.1:9000")
    assert (cluster.name, cluster.url) == ("auth", "http://127.0.0.1:9000")
    with pytest.raises(WasmetoolError, match="expected NAME=URL"):
        parse_cluster_flag("http://127.0.0.1:9000")
    config = plugin_from_flags(WASM, "f.wasm", name="f", root_id="r", configuration=b"c",
                               vm_configuration=b"v", env={"A": "1"}, policy="fail_open",
                               kind="network")
    assert (config.name, config.root_id, config.configuration, config.failure_policy,
            config.kind) == ("f", "r", b"c", "fail_open", "network")
    assert (config.vm.code, config.vm.configuration, config.vm.environment) == (
        WASM, b"v", {"A": "1"})


def test_url_parsing() -> None:
    target = parse_http_url("http://127.0.0.1:8081/base/", "--upstream")
    assert (target.host, target.port, target.authority, target.path_prefix) == (
        "127.0.0.1", 8081, "127.0.0.1:8081", "/base")
    assert parse_http_url("localhost", "x").port == 80
    secure = parse_http_url("https://example.test", "x")
    assert (secure.port, secure.tls, secure.authority) == (443, True, "example.test")
    assert not parse_http_url("http://example.test", "x").tls
    assert parse_http_url("127.0.0.1:9", "x").port == 9
    assert parse_tcp_address("tcp://127.0.0.1:7", "x").port == 7
    with pytest.raises(WasmetoolError, match="has no port"):
        parse_tcp_address("127.0.0.1", "--upstream")
    with pytest.raises(WasmetoolError, match="invalid port"):
        parse_http_url("http://h:99999", "--upstream")


def test_unnamed_plugins_get_unique_names(wasm_dir: Path) -> None:
    unnamed = {"vm_config": {"code": {"local": {"filename": "filter.wasm"}}}}
    inline = {"vm_config": {"code": {"local": {"inline_string": "x"}}}}
    setup = parse_document({"http_filters": [unnamed, unnamed, plugin(name="filter#2"), inline]},
                           wasm_dir)
    assert [p.name for p in setup.plugins] == ["filter", "filter#3", "filter#2", "plugin"]
