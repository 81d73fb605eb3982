"""A local reply to a gRPC request becomes a trailers-only gRPC answer, as Envoy 1.40's
prepareLocalReply builds it from the filter's headers."""

from __future__ import annotations

from wasmetool.host.http_filter import _grpc_local_reply


def test_the_filters_content_type_is_replaced_and_403_maps_to_7() -> None:
    status, headers, body = _grpc_local_reply(
        403, [(b"x-local-reply", b"wasm"), (b"content-type", b"text/plain"),
              (b"content-length", b"9")], b"denied\n", -1)
    assert (status, body) == (200, b"")
    assert headers == [(b"x-local-reply", b"wasm"), (b"content-type", b"application/grpc"),
                       (b"grpc-status", b"7"), (b"grpc-message", b"denied%0A")]


def test_a_grpc_status_set_by_the_filter_is_kept_and_the_body_replaces_grpc_message() -> None:
    _, headers, _ = _grpc_local_reply(
        503, [(b"grpc-status", b"14"), (b"grpc-message", b"old")], b"new", 7)
    assert headers == [(b"grpc-status", b"14"), (b"content-type", b"application/grpc"),
                       (b"grpc-message", b"new")]
    # no body: the filter's grpc-message stays; the explicit grpc_status is used
    _, headers, _ = _grpc_local_reply(403, [(b"grpc-message", b"kept")], b"", 9)
    assert headers == [(b"grpc-message", b"kept"), (b"content-type", b"application/grpc"),
                       (b"grpc-status", b"9")]
