"""Context state: the VM context (id 0), root (plugin) contexts and stream contexts.

Host functions act on ``vm.ctx()`` (the effective context, falling back to the context
whose callback is running). Each context answers which header maps and buffers it can
see right now, following Envoy: a map or buffer that is not available is ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wasmetool.host import abi

if TYPE_CHECKING:
    from wasmetool.host.state import PluginState, VmState
    from wasmetool.host.stream_info import StreamInfo


# What Envoy 1.40 gives for a buffer type that exists but holds nothing here (a body outside
# its callback, network data in an HTTP filter, the gRPC message outside its callback,
# foreign-function arguments outside a call): an empty buffer, OK to read, BAD_ARGUMENT to
# write. Never mutated (proxy_set_buffer_bytes checks for it by identity).
EMPTY_BUFFER = bytearray()


class Context:
    __slots__ = ("id", "vm", "root", "deleted")
    kind = "vm"

    def __init__(self, cid: int, vm: VmState, root: RootContext | None) -> None:
        self.id = cid
        self.vm = vm
        self.root = root
        self.deleted = False

    @property
    def plugin(self) -> PluginState | None:
        return self.root.plugin if self.root is not None else None

    def get_map(self, map_type: int, write: bool = False) -> list[tuple[bytes, bytes]] | None:
        """The header map of that type here (None: not available). ``write``: the caller
        will change it or ask its size (Envoy's mutable map, not always there when the
        read-only one is)."""
        if map_type == abi.MAP_HTTP_CALL_RESPONSE_HEADERS:
            r = self.vm.http_call_response
            return r.headers if r is not None else None
        if map_type == abi.MAP_HTTP_CALL_RESPONSE_TRAILERS:
            r = self.vm.http_call_response
            return r.trailers if r is not None else None
        grpc = self.vm.grpc
        if map_type == abi.MAP_GRPC_INITIAL_METADATA:
            return grpc.initial_metadata if grpc is not None else None
        if map_type == abi.MAP_GRPC_TRAILING_METADATA:
            return grpc.trailing_metadata if grpc is not None else None
        return None

    def get_buffer(self, buf_type: int) -> bytearray | None:
        """The buffer of that type here; None = not available (NOT_FOUND), as Envoy 1.40:
        only the http_call body (outside its callback) and the plugin configuration
        (outside proxy_on_vm_start/proxy_on_configure) are ever missing."""
        vm = self.vm
        if buf_type == abi.BUF_HTTP_CALL_RESPONSE_BODY:
            return vm.http_call_body
        if buf_type == abi.BUF_VM_CONFIGURATION:
            return bytearray(vm.config.configuration)
        if buf_type == abi.BUF_PLUGIN_CONFIGURATION:
            p = self.plugin
            if p is None or not vm.configuring:
                return None
            return bytearray(p.config.configuration)
        if buf_type == abi.BUF_FOREIGN_FUNCTION_ARGUMENTS:
            args = vm.foreign_args
            return args if args is not None else EMPTY_BUFFER
        if buf_type == abi.BUF_GRPC_CALL_MESSAGE:
            grpc = vm.grpc
            return grpc.message if grpc is not None and grpc.message is not None \
                else EMPTY_BUFFER
        if buf_type <= abi.BUF_UPSTREAM_DATA:
            return EMPTY_BUFFER
        return None

    def stream_info(self) -> StreamInfo | None:
        return None

    def continue_stream(self, stream_type: int) -> int:
        return abi.BAD_ARGUMENT if stream_type > abi.STREAM_UPSTREAM else abi.NOT_FOUND

    def close_stream(self, stream_type: int) -> int:
        return abi.BAD_ARGUMENT if stream_type > abi.STREAM_UPSTREAM else abi.NOT_FOUND

    def send_local_response(self, status: int, details: bytes, body: bytes,
                            headers: list[tuple[bytes, bytes]], grpc_status: int) -> int:
        return abi.BAD_ARGUMENT


class RootContext(Context):
    __slots__ = ("plugin_rt", "tick_period_ms", "timer", "done_pending")
    kind = "root"

    def __init__(self, cid: int, vm: VmState, plugin: PluginState) -> None:
        super().__init__(cid, vm, None)
        self.root = self
        self.plugin_rt = plugin
        self.tick_period_ms = 0
        self.timer: Any = None
        self.done_pending = False

    @property
    def plugin(self) -> PluginState:
        return self.plugin_rt


class StreamContext(Context):
    """An HTTP or TCP stream context; ``owner`` (HttpStream/Connection) holds the data."""

    __slots__ = ("owner", "index", "req_released", "resp_released", "req_trl_released")
    kind = "stream"

    def __init__(self, cid: int, vm: VmState, root: RootContext, owner: Any, index: int) -> None:
        self.id = cid           # Context.__init__, inlined (one per stream and filter)
        self.vm = vm
        self.root = root
        self.deleted = False
        self.owner = owner
        self.index = index
        # Envoy 1.40 lets go of the request (response) headers once this filter's
        # on_request_headers (on_response_headers) returned Continue or was resumed, and
        # of the request trailers likewise
        self.req_released = False
        self.resp_released = False
        self.req_trl_released = False

    def get_map(self, map_type: int, write: bool = False) -> list[tuple[bytes, bytes]] | None:
        if map_type <= abi.MAP_RESPONSE_TRAILERS:
            return self.owner.get_map(map_type, self, write)
        return Context.get_map(self, map_type)

    def get_buffer(self, buf_type: int) -> bytearray | None:
        if buf_type <= abi.BUF_UPSTREAM_DATA:
            buf = self.owner.get_buffer(buf_type)
            return buf if buf is not None else EMPTY_BUFFER
        return Context.get_buffer(self, buf_type)

    def stream_info(self) -> StreamInfo | None:
        return self.owner.info

    def continue_stream(self, stream_type: int) -> int:
        return self.owner.continue_stream(self, stream_type)

    def close_stream(self, stream_type: int) -> int:
        return self.owner.close_stream(self, stream_type)

    def send_local_response(self, status: int, details: bytes, body: bytes,
                            headers: list[tuple[bytes, bytes]], grpc_status: int) -> int:
        return self.owner.send_local_response(self, status, details, body, headers, grpc_status)


class _GoneOwner:
    """Stands in for a finished stream, so contexts do not keep their stream alive."""

    info = None

    def get_map(self, map_type: int, ctx: Any = None, write: bool = False) -> None:
        return None

    def get_buffer(self, buf_type: int) -> None:
        return None

    def continue_stream(self, ctx: StreamContext, stream_type: int) -> int:
        return abi.NOT_FOUND

    def close_stream(self, ctx: StreamContext, stream_type: int) -> int:
        return abi.NOT_FOUND

    def send_local_response(self, ctx: StreamContext, *_args: Any) -> int:
        return abi.NOT_FOUND

    def on_vm_failed(self, ctx: StreamContext) -> None:
        return None


GONE = _GoneOwner()
