"""Context state: the VM context (id 0), root (plugin) contexts and stream contexts.

Host functions act on ``vm.ctx()`` (the effective context, falling back to the context
whose callback is running). Each context answers which header maps and buffers it can
see right now, following Envoy: a map or buffer that is not available is ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wasmetool.host import abi

if TYPE_CHECKING:
    from wasmetool.host.plugin import PluginRuntime
    from wasmetool.host.stream_info import StreamInfo
    from wasmetool.host.vm import Vm


class Context:
    __slots__ = ("id", "vm", "root", "deleted")
    kind = "vm"

    def __init__(self, cid: int, vm: Vm, root: RootContext | None) -> None:
        self.id = cid
        self.vm = vm
        self.root = root
        self.deleted = False

    @property
    def plugin(self) -> PluginRuntime | None:
        return self.root.plugin if self.root is not None else None

    def get_map(self, map_type: int) -> list[tuple[bytes, bytes]] | None:
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
        vm = self.vm
        if buf_type == abi.BUF_HTTP_CALL_RESPONSE_BODY:
            return vm.http_call_body
        if buf_type == abi.BUF_VM_CONFIGURATION:
            return bytearray(vm.config.configuration)
        if buf_type == abi.BUF_PLUGIN_CONFIGURATION:
            p = self.plugin
            return bytearray(p.config.configuration) if p is not None else None
        if buf_type == abi.BUF_FOREIGN_FUNCTION_ARGUMENTS:
            return vm.foreign_args
        if buf_type == abi.BUF_GRPC_CALL_MESSAGE:
            return vm.grpc.message if vm.grpc is not None else None
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

    def __init__(self, cid: int, vm: Vm, plugin: PluginRuntime) -> None:
        super().__init__(cid, vm, None)
        self.root = self
        self.plugin_rt = plugin
        self.tick_period_ms = 0
        self.timer: Any = None
        self.done_pending = False

    @property
    def plugin(self) -> PluginRuntime:
        return self.plugin_rt


class StreamContext(Context):
    """An HTTP or TCP stream context; ``owner`` (HttpStream/Connection) holds the data."""

    __slots__ = ("owner", "index")
    kind = "stream"

    def __init__(self, cid: int, vm: Vm, root: RootContext, owner: Any, index: int) -> None:
        self.id = cid           # Context.__init__, inlined (one per stream and filter)
        self.vm = vm
        self.root = root
        self.deleted = False
        self.owner = owner
        self.index = index

    def get_map(self, map_type: int) -> list[tuple[bytes, bytes]] | None:
        if map_type <= abi.MAP_RESPONSE_TRAILERS:
            return self.owner.get_map(map_type)
        return Context.get_map(self, map_type)

    def get_buffer(self, buf_type: int) -> bytearray | None:
        if buf_type <= abi.BUF_UPSTREAM_DATA:
            return self.owner.get_buffer(buf_type)
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

    def get_map(self, map_type: int) -> None:
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
