"""The conformance cases: each written once, run through Envoy and through `wasmetool run`.

A case builds a :class:`ProxySetup` (filters from tests/filters/*.wat, the echo
upstream, named clusters), lists the requests to send, and checks what a user
would see.  The same check runs on Envoy's replies (so the expectations are
Envoy's real behaviour) and on wasmetool's, and wasmetool's normalised replies
must equal Envoy's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.exchange import Exchange, Request
from tests.support.plugins import ProxySetup, WasmPlugin


@dataclass
class Env:
    """What a case needs to build its setup."""

    wasm: Callable[[str], Path]       # filter name -> compiled .wasm
    upstream: str                     # echo upstream URL
    callout: str                      # second echo upstream (http_call target)


@dataclass
class Case:
    name: str
    setup: Callable[[Env], ProxySetup]
    requests: list[Request]
    check: Callable[[list[Exchange], str], None]   # (replies, proxy log text)
    notes: str = ""
    xfail_wasmetool: str = ""                      # a named host gap, if any
    params: dict[str, str] = field(default_factory=dict)


def _plugin(env: Env, filter_name: str, **kwargs: object) -> WasmPlugin:
    return WasmPlugin(name=kwargs.pop("name", filter_name), wasm=env.wasm(filter_name),  # type: ignore[arg-type]
                      **kwargs)  # type: ignore[arg-type]


# --- headers ---------------------------------------------------------------------------

def _check_headers(r: list[Exchange], _log: str) -> None:
    (x,) = r
    assert x.status == 200
    assert x.echo_header("x-added-req") == "yes"
    assert x.echo_header("x-replace-me") == "replaced"
    assert x.echo_header("x-remove-me") is None
    assert x.echo_header("x-keep") == "kept"
    assert x.header("x-added-resp") == "yes"
    assert x.header("content-type") == "text/x-filtered"
    assert x.header("x-upstream-name") is None


HEADERS = Case(
    "headers",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "headers")]),
    [Request(path="/h?q=1", headers={"x-replace-me": "orig", "x-remove-me": "1", "x-keep": "kept"})],
    _check_headers,
)


# --- local response --------------------------------------------------------------------

def _check_local_reply(r: list[Exchange], _log: str) -> None:
    denied, passed = r
    assert denied.status == 403
    assert denied.body == b"denied by wasm filter\n"
    assert denied.header("x-local-reply") == "wasm"
    assert denied.header("content-type") == "text/plain"
    # Envoy runs the replying filter's own encode path on its local reply too
    assert denied.header("x-resp-filter") == "seen"
    assert passed.status == 200
    assert passed.echo() is not None and passed.echo()["path"] == "/fine"
    assert passed.header("x-resp-filter") == "seen"


LOCAL_REPLY = Case(
    "local_reply",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "local_reply")]),
    [Request(path="/deny/me"), Request(path="/fine")],
    _check_local_reply,
)


def _check_local_reply_chain(r: list[Exchange], _log: str) -> None:
    denied, passed = r
    assert denied.status == 403
    assert denied.body == b"denied by wasm filter\n"
    # the filter before the one replying sees the local reply on its encode path
    assert denied.header("x-added-resp") == "yes"
    assert passed.status == 200
    assert passed.echo_header("x-added-req") == "yes"


LOCAL_REPLY_CHAIN = Case(
    "local_reply_chain",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[
        _plugin(env, "headers"), _plugin(env, "local_reply")]),
    [Request(path="/deny"), Request(path="/fine")],
    _check_local_reply_chain,
)


# --- configuration ---------------------------------------------------------------------

def _check_config(r: list[Exchange], _log: str) -> None:
    (x,) = r
    assert x.echo_header("x-plugin-config") == "plugin-config-value"
    assert x.echo_header("x-vm-config") == "vm-config-value"
    assert x.header("x-plugin-config") == "plugin-config-value"


CONFIG = Case(
    "configuration",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "config", configuration="plugin-config-value", vm_configuration="vm-config-value")]),
    [Request(path="/c")],
    _check_config,
)


CASES: list[Case] = [HEADERS, LOCAL_REPLY, LOCAL_REPLY_CHAIN, CONFIG]
