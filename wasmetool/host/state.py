"""The narrow interface the ABI's lower half is written against.

Host calls (``hostcalls/<topic>.py``, ``wasi``), contexts, properties (``attributes``) and
shared state act on a VM, its contexts, its plugin and the host's services — but they
must not import the modules that build those (``vm``, ``plugin``, ``runtime``), since
those import them in turn. They name these protocols instead; :class:`~wasmetool.host.vm.Vm`,
:class:`~wasmetool.host.contexts.Context`, :class:`~wasmetool.host.plugin.PluginRuntime`
and :class:`~wasmetool.host.runtime.Host` satisfy them structurally. So imports inside the
runtime run one way::

    runtime -> http_filter, network_filter -> plugin -> vm -> hostcalls -> contexts,
    attributes, shared_state -> state -> config, dispatch, memory, metrics, stream_info, abi

This module imports only leaf data modules. Keep each protocol to what its users
actually touch: a member belongs here only when ``vm`` or a module below it needs it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from wasmetool.host.config import Limits, PluginConfig, VmConfig
from wasmetool.host.dispatch import Dispatcher, HttpCallResponse, TimerHandle
from wasmetool.host.memory import GuestMemory
from wasmetool.host.metrics import Metric, MetricStore
from wasmetool.host.observe import CallObserver
from wasmetool.host.stream_info import StreamInfo

Headers = list[tuple[bytes, bytes]]


class PluginState(Protocol):
    """A configured plugin as contexts and properties see it."""

    @property
    def config(self) -> PluginConfig: ...

    @property
    def name(self) -> str: ...

    @property
    def root(self) -> RootState | None: ...


class ContextState(Protocol):
    """A VM, root or stream context: what host calls ask of the effective context."""

    id: int
    deleted: bool

    @property
    def vm(self) -> VmState: ...

    @property
    def root(self) -> RootState | None: ...

    @property
    def kind(self) -> str: ...

    @property
    def plugin(self) -> PluginState | None: ...

    def get_map(self, map_type: int, write: bool = False) -> Headers | None: ...

    def get_buffer(self, buf_type: int) -> bytearray | None: ...

    def stream_info(self) -> StreamInfo | None: ...

    def continue_stream(self, stream_type: int) -> int: ...

    def close_stream(self, stream_type: int) -> int: ...

    def send_local_response(self, status: int, details: bytes, body: bytes,
                            headers: Headers, grpc_status: int) -> int: ...


class RootState(ContextState, Protocol):
    """A root (plugin) context: its tick timer and its pending proxy_done."""

    tick_period_ms: int
    timer: TimerHandle | None
    done_pending: bool

    @property
    def plugin(self) -> PluginState: ...


class SharedQueueState(Protocol):
    """One shared queue: its token, the VM and root context it delivers to, its items."""

    token: int
    items: deque[bytes]

    @property
    def vm(self) -> VmState: ...

    @property
    def root(self) -> RootState: ...


class SharedDataApi(Protocol):
    """Key/value with CAS, scoped by vm_id, process wide."""

    def get(self, vm_id: str, key: bytes) -> tuple[bytes, int] | None: ...

    def set(self, vm_id: str, key: bytes, value: bytes, cas: int) -> int: ...


class SharedQueueApi(Protocol):
    """Shared queues by (vm_id, name) and token, process wide."""

    def register(self, vm_id: str, name: bytes, vm: VmState, root: RootState) -> int: ...

    def resolve(self, vm_id: str, name: bytes) -> int | None: ...

    def get(self, token: int) -> SharedQueueState | None: ...

    def enqueue(self, token: int, data: bytes) -> int: ...


class HostServices(Protocol):
    """What a VM, its host calls and its streams reach of the host that runs them."""

    log_level: int
    limits: Limits
    observer: CallObserver | None      # wraps host calls and callbacks when a VM loads
    # (plugin name, message) for a host call given memory outside the guest's
    on_memory_fault: Callable[[str, str], None] | None

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def metrics(self) -> MetricStore: ...

    @property
    def shared_data(self) -> SharedDataApi: ...

    @property
    def queues(self) -> SharedQueueApi: ...

    def count(self, name: str, n: int = 1) -> None: ...

    def emit_log(self, level: int, plugin: str, context_id: int, message: str) -> None: ...

    def on_vm_failed(self, vm: VmState) -> None: ...

    def finish_root_delete(self, root: RootState) -> None: ...

    def set_tick_period(self, root: RootState, period_ms: int) -> None: ...

    def queue_ready(self, queue: SharedQueueState) -> None: ...

    def root_call(self, root: RootState, name: str, *args: int) -> int:
        """Call a root-context callback of the guest (gRPC callbacks); 0 if it is absent or
        the VM failed."""
        ...

    def start_http_call(self, vm: VmState, root: RootState, cluster: str, headers: Headers,
                        body: bytes, trailers: Headers, timeout_ms: int, ret_ptr: int) -> int: ...


class VmState(Protocol):
    """One VM as host calls see it: guest memory, the effective context, the guest's
    allocator, per-VM call state (callout results, metric ids) and its host."""

    config: VmConfig
    name: str
    abi: str
    mem: GuestMemory
    failed: str | None
    contexts: dict[int, ContextState]
    cur: ContextState | None
    eff: ContextState | None
    status_code: int
    status_message: bytes
    http_call_response: HttpCallResponse | None
    http_call_body: bytearray | None
    foreign_args: bytearray | None
    metric_ids: dict[tuple[int, str], int]
    metric_names: dict[int, Metric]
    next_metric_id: int
    grpc: Any                         # grpc_calls.VmGrpc once the VM made a gRPC call
    configuring: bool                 # in proxy_on_vm_start/_configure (buffer 7 readable)

    @property
    def host(self) -> HostServices: ...

    def ctx(self) -> ContextState: ...

    def alloc(self, size: int) -> int: ...

    def copy_out(self, data: bytes, ptr_ptr: int, size_ptr: int) -> int: ...

    def log_host(self, level: int, message: str, context_id: int | None = None) -> None: ...
