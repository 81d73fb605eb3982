"""The conformance cases: each written once, run through Envoy and through `wasmetool run`.

A case builds a :class:`ProxySetup` (filters from tests/filters/*.wat, the echo
upstream, named clusters), lists the requests to send, and checks what a user
would see.  The same check runs on Envoy's replies (so the expectations are
Envoy's real behaviour) and on wasmetool's, and wasmetool's normalised replies
must equal Envoy's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    keep_alive: bool = False                       # all requests over one client connection
    concurrent: bool = False                       # all requests at once (own connections)
    process_env: dict[str, str] = field(default_factory=dict)   # set for both proxies
    params: dict[str, str] = field(default_factory=dict)


def _plugin(case_env: Env, filter_name: str, **kwargs: object) -> WasmPlugin:
    """A plugin running tests/filters/<filter_name>.wat (named after it unless name=...)."""
    return WasmPlugin(name=kwargs.pop("name", filter_name),  # type: ignore[arg-type]
                      wasm=case_env.wasm(filter_name), **kwargs)  # type: ignore[arg-type]


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


def _check_upstream_refused(r: list[Exchange], _log: str) -> None:
    (x,) = r
    # the proxy's own 503 passes the filter's response path
    assert x.status == 503
    assert x.body == (b"upstream connect error or disconnect/reset before headers. "
                      b"reset reason: remote connection failure")
    assert x.header("x-added-resp") == "yes"


def _check_repeated(r: list[Exchange], _log: str) -> None:
    (x,) = r
    assert x.echo_header("x-dup-value") == "one"        # the first value, not joined
    assert x.echo_header("x-cookie-value") == "a=1"
    assert x.echo_header("x-dup-count") == "2"          # repeats stay separate entries
    echo = x.echo() or {"headers": []}
    assert [v for k, v in echo["headers"] if k == "x-dup"] == ["replaced"]
    assert [v for k, v in echo["headers"] if k == "x-added"] == ["first", "second"]


REPEATED = Case(
    "repeated_headers",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "repeated_headers")]),
    [Request(path="/r", headers={"x-added": "first"},
             repeated=[("x-dup", "one"), ("x-dup", "two"), ("cookie", "a=1"), ("cookie", "b=2")])],
    _check_repeated,
)


def _refused_setup(env: Env) -> ProxySetup:
    from tests.support.ports import free_port

    return ProxySetup(upstream=f"http://127.0.0.1:{free_port()}",
                      http_filters=[_plugin(env, "headers")])


UPSTREAM_REFUSED = Case("upstream_refused", _refused_setup, [Request(path="/x")],
                        _check_upstream_refused)


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


GRPC_REQUEST = {"content-type": "application/grpc", "te": "trailers"}


def _check_grpc_local_reply(r: list[Exchange], _log: str) -> None:
    plain, grpc = r
    assert plain.status == 403 and plain.body == b"denied\n"
    # to a gRPC request the same local reply goes out as a trailers-only gRPC answer
    assert grpc.status == 200 and grpc.body == b""
    assert grpc.header("content-type") == "application/grpc"
    assert grpc.header("grpc-status") == "7"
    assert grpc.header("grpc-message") == "denied%0A"


LOCAL_REPLY_GRPC = Case(
    "local_reply_grpc_status",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "grpc_reply")]),
    [Request(path="/x"), Request("POST", "/pkg.Svc/Method", headers=GRPC_REQUEST)],
    _check_grpc_local_reply,
)


def _check_grpc_reply_content_type(r: list[Exchange], _log: str) -> None:
    (grpc,) = r
    # the filter's own content-type (text/plain) is replaced, not kept beside the gRPC one;
    # status 403 maps to grpc-status 7
    assert [v for k, v in grpc.headers if k == "content-type"] == ["application/grpc"]
    assert grpc.header("grpc-status") == "7"
    assert grpc.header("x-local-reply") == "wasm"


LOCAL_REPLY_GRPC_CONTENT_TYPE = Case(
    "local_reply_grpc_content_type",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "local_reply")]),
    [Request("POST", "/deny", headers=GRPC_REQUEST)],
    _check_grpc_reply_content_type,
)


def _check_unread_body(r: list[Exchange], _log: str) -> None:
    (denied,) = r
    # replying before the request body was read: Envoy closes the connection after it
    assert denied.status == 403
    assert denied.header("connection") == "close"


LOCAL_REPLY_UNREAD_BODY = Case(
    "local_reply_unread_body",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "local_reply")]),
    [Request("POST", "/deny", body=b"some body")],
    _check_unread_body,
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


def _check_body_large(r: list[Exchange], _log: str) -> None:
    plain, rewritten = r
    # 200 kB arrives in many chunks; body_size is cumulative while the filter buffers
    assert plain.echo() is not None and plain.echo()["body"] == "<<" + "a" * 200_000 + ">>"
    assert rewritten.body == b'rewritten:200000:{"body": "<<aaaaaaaa'


BODY_LARGE = Case(
    "body_rewrite_large",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "body")]),
    [Request("POST", "/big", body=b"a" * 200_000),
     Request("POST", "/big", headers={"x-rewrite-response": "1"}, body=b"a" * 200_000)],
    _check_body_large,
)


def _check_buffer_limit(r: list[Exchange], _log: str) -> None:
    plain, rewritten = r
    # a filter buffering past Envoy's per-connection buffer limit (1 MiB by default):
    # Envoy answers 413 itself, and that reply passes the filter's response path
    assert plain.status == 413 and plain.body == b"Payload Too Large"
    assert rewritten.status == 413 and rewritten.body == b"rewritten:0:Payload Too Large"


BUFFER_LIMIT = Case(
    "body_buffer_limit",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "body")]),
    [Request("POST", "/huge", body=b"a" * 2_000_000),
     Request("POST", "/huge", headers={"x-rewrite-response": "1"}, body=b"a" * 2_000_000)],
    _check_buffer_limit,
)


def _check_body_chain(r: list[Exchange], _log: str) -> None:
    plain, rewritten = r
    # requests pass the chain in order, responses in reverse order
    assert plain.echo() is not None and plain.echo()["body"] == "<<<<hi>>>>"
    assert rewritten.body == b'rewritten:2:rewritten:6:{"body":'
    assert rewritten.header("x-added-resp") == "yes"


def _body_chain(names: tuple[str, str]) -> Callable[[Env], ProxySetup]:
    return lambda env: ProxySetup(upstream=env.upstream, http_filters=[
        _plugin(env, "body", name=names[0]), _plugin(env, "body", name=names[1]),
        _plugin(env, "headers")])


BODY_CHAIN_REQUESTS = [Request("POST", "/a", body=b"hi"),
                       Request("POST", "/rw", headers={"x-rewrite-response": "1"}, body=b"hi")]

BODY_CHAIN = Case("body_rewrite_chain", _body_chain(("body_a", "body_b")), BODY_CHAIN_REQUESTS,
                  _check_body_chain)

SAME_NAME_TWICE = Case(
    "same_plugin_name_twice", _body_chain(("body", "body")), BODY_CHAIN_REQUESTS,
    _check_body_chain,
)


# --- trailers -------------------------------------------------------------------------------

def _check_trailers(r: list[Exchange], _log: str) -> None:
    fixed_length, chunked, no_body, response_trailers, both = r
    # a trailer added at the end of a content-length body: accepted, but an HTTP/1
    # upstream request with content-length cannot carry trailers
    assert fixed_length.header("x-add-status") == "0"
    assert fixed_length.header("x-trailer-count") == "none"
    assert "trailers" not in (fixed_length.echo() or {})
    # client trailers: seen, replaced, and one added, all forwarded upstream
    assert chunked.header("x-trailer-count") == "2"
    assert sorted((chunked.echo() or {}).get("trailers", [])) == [
        ["x-added-trailer", "from-trailers"], ["x-client-trailer", "replaced"],
        ["x-other", "o"]]
    assert no_body.header("x-trailer-count") == "none" and no_body.header("x-add-status") is None
    # response trailers from the upstream: replaced and added to in on_response_trailers
    expected = [("x-added-response-trailer", "1"), ("x-echo-trailer", "replaced-by-filter")]
    assert sorted(response_trailers.trailers) == expected
    assert sorted(both.trailers) == expected
    assert sorted((both.echo() or {}).get("trailers", [])) == [
        ["x-added-trailer", "from-trailers"], ["x-client-trailer", "replaced"]]


TRAILERS = Case(
    "request_trailers",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "trailers")]),
    [Request("POST", "/t1", body=b"hello"),
     Request("POST", "/t2", body=[b"he", b"llo"],
             trailers={"x-client-trailer": "orig", "x-other": "o"}),
     Request(path="/t3"),
     Request(path="/t4", headers={"x-echo-trailer": "up"}, read_trailers=True),
     Request("POST", "/t5", headers={"x-echo-trailer": "up"}, body=[b"a"],
             trailers={"x-client-trailer": "c"})],
    _check_trailers,
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


def _check_callout_auth(r: list[Exchange], _log: str) -> None:
    allow, deny, slow, other = r
    assert allow.status == 200 and allow.echo_header("x-auth") == "allowed"
    assert deny.status == 403 and deny.body == b"denied by callout 403\n"
    assert deny.header("x-auth") == "denied" and deny.echo() is None
    # a call past its timeout is answered 504 by Envoy, not failed
    assert slow.status == 403 and slow.body == b"denied by callout 504\n"
    assert other.status == 200 and other.echo_header("x-auth") is None


CALLOUT_AUTH = Case(
    "http_call_auth",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "callout_auth")],
                           clusters={"auth": env.callout}),
    [Request(path="/auth-allow"), Request(path="/auth-deny"), Request(path="/auth-slow"),
     Request(path="/other")],
    _check_callout_auth,
)


def _check_background_call(r: list[Exchange], _log: str) -> None:
    (x,) = r
    # a call from the root context (on_tick), with no stream; Envoy's async client adds
    # x-envoy-upstream-service-time to the answer and two headers to the call itself
    assert x.echo_header("x-bg-keys") == (
        ":status,content-type,content-length,x-upstream-name,x-echo-x-marker,"
        "x-envoy-upstream-service-time")
    received = json.loads(x.echo_header("x-bg-body") or "{}")
    assert received["method"] == "POST" and received["path"] == "/background"
    assert received["body"] == "ping-body"
    assert received["headers"] == [
        ["host", "callout"], ["x-marker", "m"], ["x-echo-back", "x-marker"],
        ["content-length", "9"], ["x-envoy-internal", "true"],
        ["x-envoy-expected-rq-timeout-ms", "5000"]]


BACKGROUND_CALL = Case(
    "http_call_from_tick",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "background_call")],
                           clusters={"callout": env.callout}),
    [Request(path="/bg", until=lambda x: x.echo_header("x-bg-keys") is not None)],
    _check_background_call,
)


def _check_response_call(r: list[Exchange], _log: str) -> None:
    for x in r:
        assert x.status == 200 and x.echo() is not None       # the body follows the resume
        assert x.header("x-response-call") == "200"


RESPONSE_CALL = Case(
    "http_call_from_response",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "response_call")],
                           clusters={"callout": env.callout}),
    [Request(path="/r1"), Request("POST", "/r2", body=b"body")],
    _check_response_call,
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


def _late_report(x: Exchange) -> dict[str, str]:
    report = x.echo_header("x-last-log") or ""
    return dict(item.split("=", 1) for item in report.split(";") if item)


def _check_late_properties(r: list[Exchange], _log: str) -> None:
    first, second, third = r
    assert first.echo_header("x-last-log") is None
    after_post = _late_report(second)
    assert after_post["response.code"] == "c800000000000000"        # 200, int64 LE
    assert after_post["response.code_details"] == "via_upstream"
    assert after_post["response.flags"] == "0000000000000000"
    assert after_post["request.size"] == "0500000000000000"         # the 5-byte body
    assert after_post["upstream.address"] == "127.0.0.1"
    assert after_post["request.method"] == "POST"
    assert _late_report(third)["response.code"] == "9401000000000000"   # 404


LATE_REQUESTS = [Request("POST", "/a", body=b"12345"),
                 Request(path="/b", headers={"x-echo-status": "404"}), Request(path="/c")]

LATE_PROPERTIES = Case(
    "properties_in_on_log",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "late_properties")]),
    LATE_REQUESTS,
    _check_late_properties,
)


def _check_grpc_status(r: list[Exchange], _log: str) -> None:
    # Envoy maps the HTTP status of a non-gRPC response to a gRPC status
    assert _late_report(r[1])["response.grpc_status"] == "0200000000000000"   # 200: UNKNOWN
    assert _late_report(r[2])["response.grpc_status"] == "0c00000000000000"   # 404: UNIMPLEMENTED


GRPC_STATUS = Case(
    "response_grpc_status_property",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "late_properties", configuration="grpc")]),
    LATE_REQUESTS,
    _check_grpc_status,
)


def _check_more_properties(r: list[Exchange], _log: str) -> None:
    report = _late_report(r[2])          # what on_log saw for the GET /b (404)
    assert report["xds.route_name"] == ""                      # the route has no name
    assert report["xds.filter_chain_name"] == ""
    assert report["upstream.num_endpoints"] == "0100000000000000"
    assert report["response.trailers"] == "00000000"           # an empty map
    assert report["upstream.transport_failure_reason"] == ""
    assert report["metadata"] == ""                            # empty dynamic metadata
    assert report["filter_state"] == "status:3"                # SERIALIZATION_FAILURE
    # by on_log, Envoy's response headers include the date header it added
    assert int.from_bytes(bytes.fromhex(report["response.headers_bytes"]), "little") > 0


MORE_PROPERTIES = Case(
    "properties_in_on_log_more",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "late_properties", configuration="extra")]),
    LATE_REQUESTS,
    _check_more_properties,
)


# --- shared data --------------------------------------------------------------------------

def _check_shared_data(r: list[Exchange], _log: str) -> None:
    assert [x.header("x-counter") for x in r] == ["1", "2", "3"]
    for x in r:
        assert x.echo_header("x-sd-missing") == "1"    # NOT_FOUND
        assert x.echo_header("x-sd-bad-cas") == "8"    # CAS_MISMATCH


SHARED_DATA = Case(
    "shared_data",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "shared_data", vm_id="counter_vm")]),
    [Request(path="/n1"), Request(path="/n2"), Request(path="/n3")],
    _check_shared_data,
)


def _check_shared_data_two(r: list[Exchange], _log: str) -> None:
    # two plugins, one vm_id: both increment the same counter, in chain order
    got = [sorted(v for k, v in x.headers if k == "x-counter") for x in r]
    assert got == [["1", "2"], ["3", "4"], ["5", "6"]]


SHARED_DATA_TWO = Case(
    "shared_data_two_plugins",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[
        _plugin(env, "shared_data", name="first", vm_id="counter_vm"),
        _plugin(env, "shared_data", name="second", vm_id="counter_vm")]),
    [Request(path="/n1"), Request(path="/n2"), Request(path="/n3")],
    _check_shared_data_two,
)


# --- shared queue between two VMs ---------------------------------------------------------

def _check_queue(r: list[Exchange], _log: str) -> None:
    first, peek1, second, peek2 = r
    assert first.echo_header("x-resolve-status") == "0"
    assert first.echo_header("x-enqueue-status") == "0"
    assert peek1.echo_header("x-last") == "/enqueue/one"
    assert peek1.echo_header("x-count") == "1"
    assert second.echo_header("x-enqueue-status") == "0"
    assert peek2.echo_header("x-last") == "/enqueue/two"
    assert peek2.echo_header("x-count") == "2"


def _queue_seen(path: str, count: str) -> Callable[[Exchange], bool]:
    return lambda x: x.echo_header("x-last") == path and x.echo_header("x-count") == count


SHARED_QUEUE = Case(
    "shared_queue_two_vms",
    lambda env: ProxySetup(
        upstream=env.upstream,
        http_filters=[_plugin(env, "queue_sender", vm_id="qvm", root_id="sender")],
        singletons=[_plugin(env, "queue_receiver", vm_id="qvm", root_id="receiver")]),
    [Request(path="/enqueue/one"),
     Request(path="/peek", until=_queue_seen("/enqueue/one", "1")),
     Request(path="/enqueue/two"),
     Request(path="/peek", until=_queue_seen("/enqueue/two", "2"))],
    _check_queue,
    notes="the sender's peeks are repeated until the receiver has caught up",
)


# --- tick-resumed requests ----------------------------------------------------------------

def _check_tick(r: list[Exchange], _log: str) -> None:
    for x in r:
        assert x.status == 200
        assert x.echo_header("x-resumed-by") == "tick"


TICK = Case(
    "tick_resume",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "tick")]),
    [Request(path="/t1"), Request("POST", "/t2", body=b"paused body")],
    _check_tick,
)


# --- trapping filter ----------------------------------------------------------------------

def _check_trap_closed(r: list[Exchange], _log: str) -> None:
    before, trapped, after = r
    assert before.status == 200 and before.echo_header("x-trap-filter") == "alive"
    # fail closed: the trapping request and every later one get Envoy's 503
    assert trapped.status == 503 and trapped.echo() is None
    assert after.status == 503 and after.echo() is None


TRAP_FAIL_CLOSED = Case(
    "trap_fail_closed",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "trap")]),
    [Request(path="/ok"), Request(path="/trap"), Request(path="/ok-again")],
    _check_trap_closed,
)


def _check_trap_open(r: list[Exchange], _log: str) -> None:
    before, trapped, after = r
    assert before.status == 200 and before.echo_header("x-trap-filter") == "alive"
    # fail open: requests bypass the broken plugin and reach the upstream unfiltered
    assert trapped.status == 200 and trapped.echo_header("x-trap-filter") is None
    assert after.status == 200 and after.echo() is not None
    assert after.echo_header("x-trap-filter") is None


TRAP_FAIL_OPEN = Case(
    "trap_fail_open",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "trap",
                                                                        fail_open=True)]),
    [Request(path="/ok"), Request(path="/trap"), Request(path="/ok-again")],
    _check_trap_open,
)


def _check_trap_reload(r: list[Exchange], _log: str) -> None:
    before, trapped, after, again = r
    assert before.status == 200 and before.echo_header("x-trap-filter") == "alive"
    assert trapped.status == 503
    # FAIL_RELOAD: a fresh VM serves the later requests, filter included
    assert after.status == 200 and after.echo_header("x-trap-filter") == "alive"
    assert again.status == 200 and again.echo_header("x-trap-filter") == "alive"


TRAP_FAIL_RELOAD = Case(
    "trap_fail_reload",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "trap", failure_policy="FAIL_RELOAD")]),
    [Request(path="/ok"), Request(path="/trap"),
     Request(path="/ok-again", until=lambda x: x.status == 200, until_timeout=8.0),
     Request(path="/ok-third")],
    _check_trap_reload,
    notes="Envoy reloads after a backoff (1 s by default), so /ok-again is retried until "
          "it succeeds; the 503s in between are not compared",
)


def _check_failing_outside(r: list[Exchange], log: str) -> None:
    before, failing, after = r
    assert before.status == 200 and before.echo_header("x-failing-filter") == "alive"
    assert after.status == 503 and after.echo() is None      # fail closed from then on
    if (failing.echo() or {}).get("path") == "/tick-trap":
        assert failing.status == 200                          # the tick fails later
    else:
        assert failing.status == 503                          # the allocator failed in it
    assert "proxy_on_memory_allocate" in log or "proxy_on_tick" in log


def _failing_case(name: str, path: str) -> Case:
    return Case(
        name,
        lambda env: ProxySetup(upstream=env.upstream,
                               http_filters=[_plugin(env, "failing_outside")]),
        [Request(path="/ok"), Request(path=path),
         Request(path="/after", until=lambda x: x.status == 503)],
        _check_failing_outside,
    )


ALLOC_TRAP = _failing_case("allocator_trap", "/alloc-trap")
TICK_TRAP = _failing_case("tick_trap", "/tick-trap")


def _check_memory_bomb(r: list[Exchange], _log: str) -> None:
    before, bomb, after = r
    assert before.status == 200 and before.echo_header("x-runaway-filter") == "alive"
    assert bomb.status == 503 and bomb.echo() is None   # growth refused, then the guest traps
    assert after.status == 503


MEMORY_BOMB = Case(
    "memory_bomb_fail_closed",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "runaway")]),
    [Request(path="/ok"), Request(path="/bomb"), Request(path="/ok-again")],
    _check_memory_bomb,
)


# --- ABI 0.1.0 ----------------------------------------------------------------------------

def _check_abi010(r: list[Exchange], _log: str) -> None:
    (x,) = r
    assert x.status == 200
    assert x.echo_header("x-abi") == "0.1.0"
    assert x.echo_header("x-config") == "old-abi-config"
    assert x.echo_header("x-missing-status") == "0"   # 0.1.0: a missing header is OK + ""
    assert x.echo_header("x-resumed") == "tick"
    assert x.echo_header("x-clear-route-cache") == "0"
    assert x.header("x-abi-response") == "0.1.0"


ABI010 = Case(
    "abi_0_1_0",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "abi010", configuration="old-abi-config")]),
    [Request(path="/old")],
    _check_abi010,
)


# --- WASI stdout / environment ------------------------------------------------------------

def _check_wasi(r: list[Exchange], log: str) -> None:
    (x,) = r
    assert x.status == 200
    assert x.echo_header("x-env-greeting") == "hello from env"
    assert x.echo_header("x-env-count") == "2"
    assert x.echo_header("x-initialized") == "1"
    assert "wasi-stdout: configured" in log
    assert "wasi-stderr: configured" in log
    assert "wasi-stdout: request" in log


WASI = Case(
    "wasi_stdout_env",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "wasi", env={"GREETING": "hello from env", "OTHER": "x"})]),
    [Request(path="/wasi")],
    _check_wasi,
)


def _check_rewrite(r: list[Exchange], _log: str) -> None:
    (x,) = r
    assert x.status == 299                       # :status replaced on the response
    echo = x.echo()
    assert echo is not None
    assert echo["method"] == "PUT" and echo["path"] == "/rewritten?by=wasm"
    assert x.echo_header("host") == "rewritten.test"
    assert x.echo_header("x-upper-name") == "Value"   # header names are lower-cased
    assert x.echo_header("user-agent") is None


REWRITE = Case(
    "pseudo_header_rewrite",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "rewrite")]),
    [Request(path="/orig?q=1")],
    _check_rewrite,
)


# --- header map pairs ---------------------------------------------------------------------

def _check_pairs(r: list[Exchange], _log: str) -> None:
    (good,) = r
    assert good.echo_header("x-pairs-keys") == (
        ":authority,:path,:method,:scheme,user-agent,accept-encoding,x-forwarded-proto")
    assert good.echo_header("x-pairs-count") == "7"
    assert int(good.echo_header("x-map-size") or "0") > 0   # Envoy's byteSize(); compared
    assert good.status == 201
    assert good.header("x-replaced-map") == "yes"
    assert good.header("x-upstream-name") is None          # the whole map was replaced


PAIRS = Case(
    "header_map_pairs",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "pairs")]),
    [Request(path="/pairs")],
    _check_pairs,
)


def _check_pairs_invalid(r: list[Exchange], _log: str) -> None:
    (bad,) = r
    # a map with a stray byte is invalid, so the response map is emptied: no :status,
    # and Envoy answers 502 itself
    assert bad.status == 502
    assert bad.body == b"missing required header: :status"


PAIRS_INVALID = Case(
    "header_map_pairs_invalid",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "pairs")]),
    [Request(path="/pairs", headers={"x-bad-pairs": "1"})],
    _check_pairs_invalid,
)


# --- callback order -------------------------------------------------------------------------

def _check_lifecycle(r: list[Exchange], _log: str) -> None:
    trace = (r[-1].echo_header("x-trace") or "").split()
    assert trace[:3] == ["C1/0", "V1", "F1"]        # root: create, vm_start, configure
    first = trace[3:trace.index("C3/1")]
    # Envoy's HTTP order: ... response, then log -> done -> delete
    assert first == ["C2/1", "H2", "R2", "L2", "D2", "X2"]


LIFECYCLE = Case(
    "callback_order",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "lifecycle")]),
    [Request(path="/one"), Request("POST", "/two", body=b"body"), Request(path="/three")],
    _check_lifecycle,
)


def _check_start_order(r: list[Exchange], _log: str) -> None:
    # _initialize, then main(0, 0); _start is not called when _initialize exists; then
    # the root context: create, vm_start, configure
    assert r[0].echo_header("x-start-order") == "IM00CVF"


START_ORDER = Case(
    "start_order",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "start_order")]),
    [Request(path="/s")],
    _check_start_order,
)


def _check_shared_vm(r: list[Exchange], _log: str) -> None:
    second = r[-1]
    traces = [v for k, v in (second.echo() or {"headers": []})["headers"] if k == "x-trace"]
    # one VM, two root contexts (one per plugin); each filter's stream context is
    # created when the stream reaches that filter
    assert traces[-1].split() == [
        "C1/0", "V1", "F1", "C2/0", "V2", "F2",
        "C3/1", "H3", "C4/2", "H4", "R4", "R3", "L3", "L4", "D3", "X3", "D4", "X4",
        "C5/1", "H5", "C6/2", "H6"]


SHARED_VM = Case(
    "vm_shared_by_two_plugins",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[
        _plugin(env, "lifecycle", name="a", root_id="ra", vm_id="one_vm"),
        _plugin(env, "lifecycle", name="b", root_id="rb", vm_id="one_vm")]),
    [Request(path="/1"), Request(path="/2")],
    _check_shared_vm,
)


def _check_reply_skips_later(r: list[Exchange], _log: str) -> None:
    denied, passed = r
    assert denied.status == 403
    trace = (passed.echo_header("x-trace") or "").split()
    # the filter after the replying one: a context is created and torn down
    # (log, done, delete) but it sees neither the request nor the local reply
    assert trace == ["C1/0", "V1", "F1", "C2/1", "L2", "D2", "X2", "C3/1", "H3"]


REPLY_SKIPS_LATER = Case(
    "local_reply_skips_later_filters",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[
        _plugin(env, "local_reply"), _plugin(env, "lifecycle")]),
    [Request(path="/deny"), Request(path="/ok")],
    _check_reply_skips_later,
)


def _check_body_calls(r: list[Exchange], _log: str) -> None:
    trace = (r[-1].echo_header("x-trace") or "").split()
    second = trace[trace.index("C3/1"):trace.index("C4/1")]
    # HTTP/1 in Envoy: the body comes with end_of_stream=0, then an empty call ends it
    assert second[:4] == ["C3/1", "H3", "B3:4:0", "B3:0:1"]
    assert second[5].endswith(":0") and second[6] == "S3:0:1"


BODY_CALLS = Case(
    "body_callback_calls",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "lifecycle", configuration="trace bodies")]),
    [Request(path="/one"), Request("POST", "/two", body=b"body"), Request(path="/three")],
    _check_body_calls,
)


# --- metrics and proxy_log ---------------------------------------------------------------

def _check_metrics(r: list[Exchange], log: str) -> None:
    assert [x.echo_header("x-metric-counter") for x in r] == ["1", "2", "3"]
    assert [x.echo_header("x-metric-alias") for x in r] == ["1", "2", "3"]
    assert [x.echo_header("x-metric-gauge") for x in r] == ["10", "20", "30"]
    assert r[0].echo_header("x-metric-hist-status") == "2"   # histograms cannot be read
    assert r[0].echo_header("x-log-level") == "2"            # info (Envoy: wasm:info)
    assert "conformance log: request" in log
    assert "conformance warn" in log
    assert "conformance debug" not in log                    # below the log level


METRICS = Case(
    "metrics_and_log",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "metrics")]),
    [Request(path="/m1"), Request(path="/m2"), Request(path="/m3")],
    _check_metrics,
)


# --- stream control -----------------------------------------------------------------------

def _check_stream_control(r: list[Exchange], _log: str) -> None:
    close_request, close_response, reply, paused, plain = r
    assert close_request.reset          # proxy_close_stream: the stream is reset
    assert close_response.reset
    assert reply.status == 418 and reply.body == b"teapot from response\n"
    assert reply.header("x-upstream-name") is None       # the upstream reply was replaced
    assert paused.status == 200 and paused.header("x-response-resumed") == "tick"
    assert paused.echo() is not None
    assert plain.status == 200 and plain.header("x-response-resumed") is None


STREAM_CONTROL = Case(
    "stream_control",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(env, "stream_control")]),
    [Request(path="/close-request"), Request(path="/close-response"),
     Request(path="/reply-in-response"), Request(path="/pause-response"), Request(path="/plain")],
    _check_stream_control,
)


def _wasi_report(x: Exchange) -> dict[str, str]:
    return dict(line.split("=", 1) for line in x.body.decode().splitlines())


def _check_wasi_calls(r: list[Exchange], _log: str) -> None:
    (x,) = r
    assert x.status == 200
    report = _wasi_report(x)
    assert report["args"] == "0,0"                                    # no arguments
    assert report["fd_write.stdout"] == report["fd_write.stderr"] == "0"
    assert report["fd_write.fd3"] == "8"                              # BADF
    assert report["fd_read.stdin"] == "52"                            # NOSYS: no input
    assert report["random_get.70000"] == "28"                         # INVAL: over 64 KiB
    assert report["clock_time_get.process"] == "58"                   # NOTSUP
    assert report["path_open.fd3"] == "44"                            # NOENT: no files
    assert report["sock_accept.fd3"] == "58"                          # no sockets


WASI_CALLS = Case(
    "wasi_calls",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "wasi_calls", env={"A": "1"})]),
    [Request(path="/wasi-calls")],
    _check_wasi_calls,
)


def _check_host_env(r: list[Exchange], _log: str) -> None:
    (x,) = r
    # host_env_keys passes the proxy process's own variables; unset ones are skipped
    assert x.echo_header("x-env-greeting") == "from the host"
    assert x.echo_header("x-env-count") == "2"


WASI_HOST_ENV = Case(
    "wasi_host_env_keys",
    lambda env: ProxySetup(upstream=env.upstream, http_filters=[_plugin(
        env, "wasi", env={"OTHER": "x"}, host_env_keys=["GREETING", "CONFORMANCE_UNSET"])]),
    [Request(path="/wasi")],
    _check_host_env,
    process_env={"GREETING": "from the host"},
)


CASES: list[Case] = [
    START_ORDER, LIFECYCLE, SHARED_VM, REPLY_SKIPS_LATER, BODY_CALLS, HEADERS, REPEATED,
    UPSTREAM_REFUSED, REWRITE, PAIRS, PAIRS_INVALID, LOCAL_REPLY, LOCAL_REPLY_CHAIN,
    LOCAL_REPLY_GRPC, LOCAL_REPLY_GRPC_CONTENT_TYPE, LOCAL_REPLY_UNREAD_BODY, CONFIG, BODY,
    BODY_LARGE, BUFFER_LIMIT, BODY_CHAIN, SAME_NAME_TWICE, TRAILERS, HTTP_CALL,
    CALLOUT_AUTH, BACKGROUND_CALL, RESPONSE_CALL, PROPERTIES, LATE_PROPERTIES, GRPC_STATUS,
    MORE_PROPERTIES, SHARED_DATA, SHARED_DATA_TWO, METRICS, SHARED_QUEUE, TICK,
    STREAM_CONTROL, TRAP_FAIL_CLOSED, TRAP_FAIL_OPEN, TRAP_FAIL_RELOAD, ALLOC_TRAP,
    TICK_TRAP, MEMORY_BOMB, ABI010, WASI, WASI_HOST_ENV, WASI_CALLS,
]


# The same cases with every request on one client connection (HTTP/1.1 keep-alive):
# streams follow each other on a connection, and upstream connections are reused.
KEEP_ALIVE_CASES: list[Case] = [
    replace(case, name=f"{case.name}_keepalive", keep_alive=True)
    for case in (LIFECYCLE, HEADERS, BODY, BODY_LARGE, HTTP_CALL, CALLOUT_AUTH, TICK,
                 STREAM_CONTROL, LOCAL_REPLY, TRAILERS, SHARED_QUEUE)
]
CASES += KEEP_ALIVE_CASES


def _check_tick_concurrent(r: list[Exchange], _log: str) -> None:
    # eight requests paused at once; ticks resume each through its own context
    assert [x.status for x in r] == [200] * 8
    assert [x.echo_header("x-resumed-by") for x in r] == ["tick"] * 8
    assert [(x.echo() or {}).get("path") for x in r] == [f"/c{i}" for i in range(8)]


def _check_http_call_concurrent(r: list[Exchange], _log: str) -> None:
    # eight calls in flight at once; each answer resumes the request that made it
    assert [(x.echo() or {}).get("path") for x in r] == [f"/call{i}" for i in range(8)]
    assert [x.echo_header("x-callout-status") for x in r] == ["200"] * 8


CONCURRENT_CASES: list[Case] = [
    replace(TICK, name="tick_resume_concurrent", concurrent=True,
            requests=[Request(path=f"/c{i}") for i in range(8)], check=_check_tick_concurrent),
    replace(HTTP_CALL, name="http_call_concurrent", concurrent=True,
            requests=[Request(path=f"/call{i}") for i in range(8)],
            check=_check_http_call_concurrent),
]
CASES += CONCURRENT_CASES
