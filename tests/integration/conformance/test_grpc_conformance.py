"""gRPC callouts through real Envoy 1.40 and through `wasmetool run`, against a real grpcio
server (tests/support/grpc_peer.py): the same filter, the same traces.

The probe filter tests/filters/grpc_call.wat makes a gRPC call or stream chosen by the
request path and reports every status and callback in the request header x-grpc-trace
(its grammar is at the top of the .wat).  Each case's check holds the trace Envoy gives;
it runs on Envoy's replies (so the expectations are Envoy's real behaviour) and on
wasmetool's, whose normalised replies must also equal Envoy's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conformance.cases import Case
from tests.support.envoy import run_envoy
from tests.support.exchange import Exchange, Request, normalise, send_all
from tests.support.plugins import ProxySetup, WasmPlugin
from tests.support.wasmetool_run import run_wasmetool

pytestmark = pytest.mark.integration

# what Envoy reports when the cluster's port has nobody listening
REFUSED = ("upstream connect error or disconnect/reset before headers. reset reason: remote "
           "connection failure{upstream_reset_before_response_started{remote_connection_failure"
           "|delayed_connect_error:_Connection_refused}}")
STREAM_HEADERS = ":status,content-type,grpc-accept-encoding"


@pytest.fixture(scope="module")
def grpc_env(compiled_filters: Callable[[str], Path],
             upstreams: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from tests.support.grpc_peer import run_grpc_peer, run_silent_peer
    from tests.support.ports import free_port

    with run_grpc_peer() as peer, run_silent_peer() as silent:
        yield {"upstream": upstreams["upstream"].url, "grpc": peer.url, "silent": silent.url,
               "dead": f"http://127.0.0.1:{free_port()}",
               "wasm": compiled_filters("grpc_call")}


def _setup(env: dict[str, Any]) -> ProxySetup:
    return ProxySetup(upstream=env["upstream"],
                      http_filters=[WasmPlugin(name="grpc_call", wasm=env["wasm"])],
                      grpc_clusters={"grpc": env["grpc"], "dead": env["dead"],
                                     "silent": env["silent"]})


def _traces(r: list[Exchange]) -> list[str | None]:
    for x in r:
        assert x.status == 200 and x.echo() is not None    # every request reached upstream
    return [x.echo_header("x-grpc-trace") for x in r]


def _check_unary(r: list[Exchange], _log: str) -> None:
    assert _traces(r) == [
        # unary success: only proxy_on_grpc_receive, no metadata callbacks and no close
        # (L0 on the next request: nothing came late); calls take tokens 5, 9, 13, ...
        "S0 k5 R10:echo:hello L0",
        "S0 k9 R0: L0",                                     # an empty message
        # what Envoy sends to the gRPC server besides the plugin's x-md
        "S0 k13 R78:x-envoy-expected-rq-timeout-ms=5000;x-envoy-internal=true;x-md=v1;"
        "deadline=yes L0",
        "S0 k17 R10:echo:hello L0",
    ]


def _check_unary_failures(r: list[Exchange], _log: str) -> None:
    assert _traces(r) == [
        # a failure reports only proxy_on_grpc_close; proxy_get_status gives the
        # grpc-message and Envoy's response details in braces; the call can still be
        # closed from that callback (b0)
        "S0 k5 C7:nope{via_upstream} b0 L0",
        "S0 k9 C12:Method not found!{via_upstream} b0 L0",
        # past the call's timeout (a peer that never answers): UNAVAILABLE, not
        # DEADLINE_EXCEEDED
        "S0 k13 C14:upstream request timeout{response_timeout} b0 L0",
        # a timeout of 0 reaches the server as a deadline already past
        "S0 k17 C4:Deadline Exceeded{via_upstream} b0 L0",
        f"S0 k21 C14:{REFUSED} b0 L0",
        "S4 L0",                        # unknown cluster: PARSE_FAILURE, no token used
        "S0 k25 R10:echo:hello L0",
    ]


def _check_cancel_close(r: list[Exchange], _log: str) -> None:
    assert _traces(r) == [
        "S0 k5 x0 x1 L0",               # cancel, then cancel again: NOT_FOUND
        "S0 k9 c0 c1 L0",               # close of a call cancels it
        "S0 k6 s0 x0 x1 s1 L0",         # a cancelled stream is gone: send -> NOT_FOUND
        # tokens 1001 (call-shaped), 1000, 1002 (stream-shaped), 1003: send/cancel/close
        "T s2 x1 c1 s2 x2 c2 s1 x1 c1 s2 x2 c2 L0",
        "S0 k13 R10:echo:hello L0",     # nothing of the cancelled ones came late
    ]


def _check_streams(r: list[Exchange], _log: str) -> None:
    assert _traces(r) == [
        # server stream: initial metadata (response headers + Envoy's service time),
        # each message, trailing metadata, then close with status 0; in that callback the
        # stream still exists: a send is OK, a close OK, a second close NOT_FOUND
        f"S0 k6 s0 M5[{STREAM_HEADERS},x-init,x-envoy-upstream-service-time] R3:one R3:two "
        "R5:three T3[grpc-status,grpc-message,x-trail] C0:via_upstream a0 b0 b1 L0",
        f"S0 k10 s0 s0 M4[{STREAM_HEADERS},x-envoy-upstream-service-time] R4:re:a R4:re:b "
        "T2[grpc-status,grpc-message] C0:via_upstream a0 b0 b1 L0",
        # proxy_grpc_close ends the sending side: a later send is OK but sends nothing
        f"S0 k14 s0 c0 s0 M4[{STREAM_HEADERS},x-envoy-upstream-service-time] R4:re:a "
        "T2[grpc-status,grpc-message] C0:via_upstream a0 b0 b1 L0",
        f"S0 k18 s0 s0 s0 M4[{STREAM_HEADERS},x-envoy-upstream-service-time] R4:x+y+ "
        "T2[grpc-status,grpc-message] C0:via_upstream a0 b0 b1 L0",
        # an unreachable peer: Envoy's local gRPC reply as empty initial metadata and
        # trailers-only metadata, then UNAVAILABLE
        f"S0 k22 M0[] T4[:status,content-type,grpc-status,grpc-message] C14:{REFUSED} "
        "a0 b0 b1 L0",
        "S4 L0",
        # the server answers with trailers only: empty initial metadata, then its headers
        # and Envoy's service time as trailing metadata
        "S0 k26 s0 M0[] T5[:status,content-type,grpc-status,grpc-message,"
        "x-envoy-upstream-service-time] C12:Method not found!{via_upstream} a0 b0 b1 L0",
        "S0 k30 s0 M0[] T6[:status,content-type,grpc-status,grpc-message,x-trail,"
        "x-envoy-upstream-service-time] C7:nope{via_upstream} a0 b0 b1 L0",
    ]


def _check_service_proto(r: list[Exchange], _log: str) -> None:
    assert _traces(r) == [
        # a serialized GrpcService in place of the cluster name: its cluster, and its
        # initial_metadata sent along with the plugin's
        "S0 k5 R86:x-envoy-expected-rq-timeout-ms=5000;x-envoy-internal=true;x-md=v1;"
        "x-svc=s;deadline=yes L0",
        "S10 L0",                       # it names an unknown cluster: INTERNAL_FAILURE ...
        "S0 k13 R10:echo:hello L0",     # ... and token 9 was used up all the same
    ]


def _check_not_http2(r: list[Exchange], _log: str) -> None:
    failed = ("upstream connect error or disconnect/reset before headers. reset reason: "
              "protocol error{upstream_reset_before_response_started{protocol_error}}")
    assert _traces(r) == [
        f"S0 k5 C14:{failed} b0 L0",
        f"S0 k6 M0[] T4[:status,content-type,grpc-status,grpc-message] C14:{failed} "
        "a0 b0 b1 L0",
        "S0 k9 R10:echo:hello L0",
    ]


def _case(name: str, paths: list[str], check: Callable[[list[Exchange], str], None],
          http1_as_dead: bool = False) -> Case:
    def setup(env: dict[str, Any]) -> ProxySetup:
        if http1_as_dead:       # "dead" is the HTTP/1.1 echo upstream: not an HTTP/2 server
            env = {**env, "dead": env["upstream"]}
        return _setup(env)
    return Case(name, setup,  # type: ignore[arg-type]
                [Request(path=p) for p in paths], check)


CASES = [
    _case("grpc_unary", ["/unary", "/empty", "/meta", "/unary"], _check_unary),
    _case("grpc_unary_failures", ["/fail", "/nomethod", "/slow", "/meta0", "/dead",
                                  "/nocluster", "/unary"], _check_unary_failures),
    _case("grpc_cancel_close", ["/cancel-call", "/close-call", "/cancel-stream", "/tokens",
                                "/unary"], _check_cancel_close),
    _case("grpc_streams", ["/server", "/bidi", "/bidi-close", "/collect", "/stream-dead",
                           "/stream-nocluster", "/stream-nomethod", "/stream-fail"],
          _check_streams),
    _case("grpc_service_proto", ["/proto", "/proto-nocluster", "/unary"], _check_service_proto),
    _case("grpc_peer_not_http2", ["/dead", "/stream-dead", "/unary"], _check_not_http2,
          http1_as_dead=True),
]


def _envoy(case: Case, env: dict[str, Any], workdir: Path,
           cache: dict[str, Any]) -> list[dict[str, Any]]:
    if case.name not in cache:
        with run_envoy(case.setup(env), workdir) as envoy:  # type: ignore[arg-type]
            replies = send_all(envoy.port, case.requests)
            assert envoy.alive(), "envoy died during the case"
            log = envoy.logs()
        case.check(replies, log)
        cache[case.name] = [normalise(x) for x in replies]
    return cache[case.name]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_envoy(case: Case, grpc_env: dict[str, Any], envoy_results: dict[str, Any],
               tmp_path: Path) -> None:
    envoy_results.pop(case.name, None)
    _envoy(case, grpc_env, tmp_path, envoy_results)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_wasmetool(case: Case, grpc_env: dict[str, Any], envoy_results: dict[str, Any],
                   tmp_path: Path) -> None:
    expected = _envoy(case, grpc_env, tmp_path / "envoy", envoy_results)
    with run_wasmetool(case.setup(grpc_env), tmp_path / "wasmetool") as proxy:  # type: ignore[arg-type]
        replies = send_all(proxy.port, case.requests)
        assert proxy.alive(), "wasmetool run died during the case"
        log = proxy.logs()
    case.check(replies, log)
    assert [normalise(x) for x in replies] == expected


def test_cluster_flag_names_a_grpc_cluster(grpc_env: dict[str, Any], tmp_path: Path) -> None:
    """`wasmetool run --cluster NAME=URL` serves gRPC calls as the plugin file's clusters do."""
    setup = ProxySetup(upstream=grpc_env["upstream"],
                       http_filters=[WasmPlugin(name="grpc_call", wasm=grpc_env["wasm"])])
    with run_wasmetool(setup, tmp_path, extra_args=["--cluster", f"grpc={grpc_env['grpc']}"]
                       ) as proxy:
        replies = send_all(proxy.port, [Request(path="/unary"), Request(path="/server")])
    traces = _traces(replies)
    assert traces[0] == "S0 k5 R10:echo:hello L0"
    assert traces[1] is not None and traces[1].startswith("S0 k6 s0 M5[")
    assert traces[1].endswith("C0:via_upstream a0 b0 b1 L0")


def test_grpc_calls_from_every_worker(grpc_env: dict[str, Any], tmp_path: Path) -> None:
    """With --concurrency 2 each worker has its own VM and gRPC connection; calls from both
    complete (each VM numbers its own tokens)."""
    from tests.support.exchange import send_concurrently

    with run_wasmetool(_setup(grpc_env), tmp_path, extra_args=["--concurrency", "2"]) as proxy:
        replies = send_concurrently(proxy.port, [Request(path="/unary")] * 8)
        assert proxy.alive()
    traces = _traces(replies)
    assert all(t is not None and t.startswith("S0 k") and t.endswith(" R10:echo:hello L0")
               for t in traces)
