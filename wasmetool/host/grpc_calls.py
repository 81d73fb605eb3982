"""gRPC calls and streams of one VM, with Envoy 1.40's semantics (recorded in
tests/integration/conformance/test_grpc_conformance.py).

* Tokens: calls get 5, 9, 13, ... and streams 6, 10, 14, ... (one counter each, step 4,
  per VM); a refused call takes no token. ``token % 4`` tells a call (1) from a stream (2);
  any other token is a BAD_ARGUMENT to send/cancel/close.
* The first argument is a cluster name, or a serialized ``envoy.config.core.v3.GrpcService``
  (what the C++ SDK passes): bytes that parse as one are taken as one (its
  ``envoy_grpc.cluster_name``, ``authority`` and ``initial_metadata``). An unknown cluster
  name is PARSE_FAILURE (4); a GrpcService naming an unknown cluster is INTERNAL_FAILURE
  (10) and uses up a token.
* Callbacks run on the root context of the plugin that made the call. A unary call
  reports only ``proxy_on_grpc_receive`` (success) or only ``proxy_on_grpc_close``
  (failure): no metadata callbacks. A stream reports initial metadata, each message,
  trailing metadata and ``proxy_on_grpc_close`` (status 0 included).
* During ``proxy_on_grpc_close``, ``proxy_get_status`` answers the gRPC status and the
  message the dispatcher gave.
* cancel: the call/stream is reset and forgotten (a second cancel is NOT_FOUND); close of
  a call cancels it; close of a stream ends its sending side, later sends answer OK and
  send nothing, and the peer's answers still arrive.
* A token is forgotten only after its last callback returned: from proxy_on_grpc_close
  the guest may still close it (OK), and send on a stream the peer closed (OK, nothing
  sent); a stream the guest never closed stays known until it does.

The wire is the dispatcher's business (:class:`~wasmetool.host.dispatch.Dispatcher`
``grpc_stream``): h2c in ``wasmetool run``, the test's answers in the emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.dispatch import GrpcRequest, GrpcStreamHandle, Headers

if TYPE_CHECKING:
    from wasmetool.host.state import RootState, VmState

TOKEN_STEP = 4
CALL_KIND = 1
STREAM_KIND = 2
GRPC_INTERNAL = 13


def _varint(data: bytes, i: int) -> tuple[int, int] | None:
    value = shift = 0
    while i < len(data) and shift < 64:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
    return None


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]] | None:
    """Protobuf wire-format fields (number, wire type, value); None if it does not parse."""
    out: list[tuple[int, int, bytes | int]] = []
    i = 0
    while i < len(data):
        key = _varint(data, i)
        if key is None:
            return None
        tag, i = key
        number, wire = tag >> 3, tag & 7
        if number == 0:
            return None
        value: bytes | int
        if wire == 0:
            got = _varint(data, i)
            if got is None:
                return None
            value, i = got
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            if i + n > len(data):
                return None
            value, i = data[i:i + n], i + n
        elif wire == 2:
            got = _varint(data, i)
            if got is None or got[1] + got[0] > len(data):
                return None
            n, i = got
            value, i = data[i:i + n], i + n
        else:                               # groups, or not a wire type
            return None
        out.append((number, wire, value))
    return out


def parse_grpc_service(data: bytes) -> tuple[str, str | None, Headers] | None:
    """A serialized envoy.config.core.v3.GrpcService -> (envoy_grpc.cluster_name ("" if
    none), envoy_grpc.authority, initial_metadata); None when the bytes are not one."""
    top = _fields(data)
    if top is None:
        return None
    cluster, authority = "", None
    metadata: Headers = []
    try:
        for number, wire, value in top:
            if number == 1 and wire == 2 and isinstance(value, bytes):        # envoy_grpc
                for n2, w2, v2 in _fields(value) or []:
                    if n2 == 1 and w2 == 2 and isinstance(v2, bytes):
                        cluster = v2.decode()
                    elif n2 == 2 and w2 == 2 and isinstance(v2, bytes):
                        authority = v2.decode()
            elif number == 5 and wire == 2 and isinstance(value, bytes):      # HeaderValue
                key = val = b""
                for n2, w2, v2 in _fields(value) or []:
                    if n2 == 1 and w2 == 2 and isinstance(v2, bytes):
                        key = v2
                    elif n2 == 2 and w2 == 2 and isinstance(v2, bytes):
                        val = v2
                metadata.append((key.lower(), val))
    except UnicodeDecodeError:              # proto3 strings are UTF-8
        return None
    return cluster, authority, metadata


class _Call:
    __slots__ = ("token", "root", "handle", "unary", "local_closed", "remote_closed",
                 "sent_end", "response", "gone")

    def __init__(self, token: int, root: RootState, unary: bool) -> None:
        self.token = token
        self.root = root
        self.handle: GrpcStreamHandle | None = None
        self.unary = unary
        self.local_closed = False      # proxy_grpc_close on a stream
        self.remote_closed = False
        self.sent_end = False          # a message went with end_stream
        self.response: bytes | None = None
        self.gone = False              # cancelled or finished: report nothing more


class _Events:
    """GrpcEvents for one call: turns the peer's events into the plugin's callbacks."""

    __slots__ = ("calls", "call")

    def __init__(self, calls: VmGrpc, call: _Call) -> None:
        self.calls = calls
        self.call = call

    def on_initial_metadata(self, metadata: Headers) -> None:
        call = self.call
        if call.gone or call.unary:
            return
        self.calls.deliver_map(call, "proxy_on_grpc_receive_initial_metadata", metadata, True)

    def on_message(self, message: bytes) -> None:
        call = self.call
        if call.gone:
            return
        if call.unary:
            call.response = message
            return
        self.calls.deliver_message(call, message)

    def on_trailing_metadata(self, metadata: Headers) -> None:
        call = self.call
        if call.gone or call.unary:
            return
        self.calls.deliver_map(call, "proxy_on_grpc_receive_trailing_metadata", metadata, False)

    def on_close(self, status: int, message: bytes) -> None:
        call = self.call
        if call.gone:
            return
        calls = self.calls
        # as Envoy, the token is forgotten after its last callback returned (so the guest
        # may still close or cancel it from that callback)
        call.remote_closed = True
        if call.unary:
            if status == 0 and call.response is not None:
                calls.deliver_message(call, call.response)
            else:
                if status == 0:        # OK without a message: a broken answer
                    status, message = GRPC_INTERNAL, b""
                calls.deliver_close(call, status, message)
            calls.forget(call)
            return
        calls.deliver_close(call, status, message)
        if call.local_closed:
            calls.forget(call)


class VmGrpc:
    """The gRPC calls and streams of one VM, and what their callbacks may read."""

    def __init__(self, vm: VmState) -> None:
        self.vm = vm
        self.calls: dict[int, _Call] = {}
        self.last_call = CALL_KIND
        self.last_stream = STREAM_KIND
        # visible to the guest only while its callback runs (maps 4/5, buffer 5)
        self.initial_metadata: Headers | None = None
        self.trailing_metadata: Headers | None = None
        self.message: bytearray | None = None

    # ------------------------------------------------------------------ host calls
    def start(self, root: RootState, target: bytes, service: str, method: str,
              metadata: Headers, message: bytes | None, timeout_ms: int | None,
              ret_token_ptr: int) -> int:
        """proxy_grpc_call (``message`` given) or proxy_grpc_stream (``message`` None);
        ``target`` is a cluster name or a serialized GrpcService."""
        vm = self.vm
        dispatcher = vm.host.dispatcher
        unary = message is not None
        authority = None
        parsed = parse_grpc_service(target)
        if parsed is None:
            cluster = target.decode("utf-8", "replace")
            if not dispatcher.has_cluster(cluster):
                return abi.PARSE_FAILURE
        else:
            cluster, authority, service_metadata = parsed
            metadata = service_metadata + list(metadata)
        token = (self.last_call if unary else self.last_stream) + TOKEN_STEP
        if not vm.mem.put_u32(ret_token_ptr, token):
            return abi.INVALID_MEMORY_ACCESS
        if unary:
            self.last_call = token
        else:
            self.last_stream = token
        if not dispatcher.has_cluster(cluster):
            return abi.INTERNAL_FAILURE     # Envoy: the token is used up all the same
        call = _Call(token, root, unary)
        self.calls[token] = call
        request = GrpcRequest(cluster, service, method, list(metadata), timeout_ms, authority)
        call.handle = dispatcher.grpc_stream(request, _Events(self, call))
        if unary:
            call.handle.send(message or b"", True)
            call.sent_end = True
        return abi.OK

    def send(self, token: int, message: bytes, end_stream: bool) -> int:
        if token % TOKEN_STEP != STREAM_KIND:
            return abi.BAD_ARGUMENT
        call = self.calls.get(token)
        if call is None:
            return abi.NOT_FOUND
        if call.local_closed or call.remote_closed or call.sent_end or call.handle is None:
            return abi.OK              # Envoy accepts it and sends nothing
        call.handle.send(message, end_stream)
        if end_stream:
            call.sent_end = True
        return abi.OK

    def cancel(self, token: int) -> int:
        kind = token % TOKEN_STEP
        if kind not in (CALL_KIND, STREAM_KIND):
            return abi.BAD_ARGUMENT
        call = self.calls.get(token)
        if call is None:
            return abi.NOT_FOUND
        self._reset(call)
        return abi.OK

    def close(self, token: int) -> int:
        kind = token % TOKEN_STEP
        if kind not in (CALL_KIND, STREAM_KIND):
            return abi.BAD_ARGUMENT
        call = self.calls.get(token)
        if call is None:
            return abi.NOT_FOUND
        if kind == CALL_KIND:
            self._reset(call)
            return abi.OK
        if not call.local_closed and not call.sent_end and not call.remote_closed \
                and call.handle is not None:
            call.handle.half_close()
        call.local_closed = True
        if call.remote_closed:
            self.forget(call)
        return abi.OK

    def cancel_all(self) -> None:
        """The VM failed or shuts down: reset everything still open."""
        for call in list(self.calls.values()):
            self._reset(call)

    # ------------------------------------------------------------------ internals
    def _reset(self, call: _Call) -> None:
        self.forget(call)
        call.gone = True
        if call.handle is not None and not call.remote_closed:
            call.handle.cancel()

    def forget(self, call: _Call) -> None:
        self.calls.pop(call.token, None)

    def _alive(self, call: _Call) -> bool:
        vm = self.vm
        if vm.failed or call.root.deleted:
            self._reset(call)
            return False
        return True

    def deliver_map(self, call: _Call, callback: str, metadata: Headers, initial: bool) -> None:
        if not self._alive(call):
            return
        if initial:
            self.initial_metadata = metadata
        else:
            self.trailing_metadata = metadata
        try:
            self.vm.host.root_call(call.root, callback, call.token, len(metadata))
        finally:
            self.initial_metadata = None
            self.trailing_metadata = None

    def deliver_message(self, call: _Call, message: bytes) -> None:
        if not self._alive(call):
            return
        if call.unary:
            call.gone = True
        self.message = bytearray(message)
        try:
            self.vm.host.root_call(call.root, "proxy_on_grpc_receive", call.token,
                                    len(message))
        finally:
            self.message = None

    def deliver_close(self, call: _Call, status: int, message: bytes) -> None:
        call.gone = True
        if not self._alive(call):
            return
        vm = self.vm
        vm.status_code, vm.status_message = status, message
        try:
            vm.host.root_call(call.root, "proxy_on_grpc_close", call.token, status)
        finally:
            vm.status_code, vm.status_message = abi.OK, b""
