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


# --- body rewrite with buffering ----------------------------------------------------------

def _check_body(r: list[Exchange], _log: str) -> None:
    plain, chunked, rewritten = r
    assert plain.status == 200 and plain.echo() is not None
    assert plain.echo()["body"] == "<<hello>>"
    assert chunked.echo() is not None and chunked.echo()["body"] == "<<one-two-three>>"
    assert rewritten.status == 200
    assert rewritten.body == b'rewritten:5:{"body": "<<hello>>"'


BODY = Case(
    "body_rewrite",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "body")]),
    [Request("POST", "/body", body=b"hello"),
     Request("POST", "/body", body=[b"one-", b"two-", b"three"]),
     Request("POST", "/body", headers={"x-rewrite-response": "1"}, body=b"hello")],
    _check_body,
)


# --- http_call with pause / resume ------------------------------------------------------

def _check_http_call(r: list[Exchange], _log: str) -> None:
    ok, dead, unknown = r
    assert ok.status == 200
    assert ok.echo_header("x-callout-status") == "200"
    assert ok.echo_header("x-callout-upstream") == "callout"
    assert ok.echo_header("x-callout-echo") == "hello-callout"
    assert ok.echo_header("x-callout-body") == '{"body": "", "header'
    # Envoy delivers a refused connection as a 503 reply from its async client (a
    # successful call with Envoy's local-reply body), not as a failed call (no headers).
    assert dead.status == 200
    assert dead.echo_header("x-callout-failed") is None
    assert dead.echo_header("x-callout-status") == "503"
    assert dead.echo_header("x-callout-body") == "upstream connect err"
    assert unknown.status == 200
    assert unknown.echo_header("x-callout-error") == "2"   # BAD_ARGUMENT: unknown cluster


def _http_call_setup(env: Env) -> ProxySetup:
    from tests.support.ports import free_port

    return ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "http_call")],
                      clusters={"callout": env.callout,
                                "dead": f"http://127.0.0.1:{free_port()}"})


HTTP_CALL = Case(
    "http_call",
    _http_call_setup,
    [Request(path="/call"), Request(path="/dead"), Request(path="/unknown")],
    _check_http_call,
)


# --- properties -------------------------------------------------------------------------

def _check_properties(r: list[Exchange], _log: str) -> None:
    (x,) = r
    assert x.status == 200
    seen = {k: v for k, v in (x.echo() or {"headers": []})["headers"] if k.startswith("x-p-")}
    assert seen["x-p-path"] == "/props/a?b=c"
    assert seen["x-p-method"] == "GET"
    assert seen["x-p-plugin-name"] == "props"
    assert seen["x-p-root-id"] == "props_root"
    assert seen["x-p-source-ip"] == "127.0.0.1"
    assert x.header("x-p-response-code") == "c800000000000000"   # int64 200, little-endian


PROPERTIES = Case(
    "properties",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "properties", name="props", root_id="props_root", vm_id="props_vm")]),
    [Request(path="/props/a?b=c", headers={"x-prop-in": "prop-value",
                                            "referer": "http://ref.test/"})],
    _check_properties,
)


CASES: list[Case] = [HEADERS, LOCAL_REPLY, LOCAL_REPLY_CHAIN, CONFIG, BODY, HTTP_CALL, PROPERTIES]
