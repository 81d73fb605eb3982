"""The Host: plugins, their VMs and root contexts, and the entry points the servers use."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wasmetool.errors import WasmetoolError
from wasmetool.host import abi
from wasmetool.host.config import Limits, PluginConfig
from wasmetool.host.contexts import RootContext, StreamContext
from wasmetool.host.dispatch import Dispatcher, HttpCallResponse
from wasmetool.host.engine import EpochTicker
from wasmetool.host.fastpath import GuestTrap
from wasmetool.host.http_filter import HttpStream, HttpStreamCallbacks, _Filter
from wasmetool.host.log import LogRecord
from wasmetool.host.network_filter import Connection, ConnectionCallbacks, _NetFilter
from wasmetool.host.plugin import PluginRuntime
from wasmetool.host.shared_state import ProcessShared, SharedQueue
from wasmetool.host.stream_info import StreamInfo
from wasmetool.host.vm import Vm

if TYPE_CHECKING:
    from wasmetool.host.observe import CallObserver

__all__ = ["Host", "LogRecord", "StreamInfo", "HttpStream", "HttpStreamCallbacks"]

RELOAD_BACKOFF_NS = 1_000_000_000


class Host:
    def __init__(self, plugins: list[PluginConfig], dispatcher: Dispatcher, *,
                 limits: Limits | None = None,
                 log_sink: Callable[[LogRecord], None] | None = None,
                 log_level: int = abi.INFO, shared: ProcessShared | None = None,
                 observer: CallObserver | None = None) -> None:
        """``shared``: the shared data, queues and metrics this host shares with the other
        hosts of the process (one per worker thread); a host of its own by default.
        ``observer``: sees every host call and callback (tracing; host/observe.py)."""
        self.observer = observer
        self.plugins = [PluginRuntime(p) for p in plugins]
        self.dispatcher = dispatcher
        self.limits = limits or Limits()
        self.log_sink = log_sink
        self.log_level = log_level
        self.shared = shared if shared is not None else ProcessShared()
        self.shared.hosts.append(self)
        self.shared_data = self.shared.shared_data
        self.queues = self.shared.queues
        self.metrics = self.shared.metrics
        self.counters: dict[str, int] = {}
        self.vms: dict[tuple[Any, ...], Vm] = {}
        self.all_vms: list[Vm] = []
        self.http_plugins = [p for p in self.plugins if p.config.kind == "http"]
        self.network_plugins = [p for p in self.plugins if p.config.kind == "network"]
        self.started = False
        self._ticker = False
        self.http_streams = 0
        # called with (plugin name, message) when a host call is given memory outside the
        # guest's; the test API's strict mode sets it to fail the test
        self.on_memory_fault: Callable[[str, str], None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.started:
            return
        # plugin names need not be unique (Envoy accepts one PluginConfig name on several
        # filters); nothing in the host is keyed by name, only log lines carry it
        EpochTicker.acquire()
        self._ticker = True
        try:
            for p in self.plugins:
                self._start_plugin(p)
        except BaseException:
            self.shutdown()
            raise
        self.started = True

    def _vm_key(self, p: PluginConfig) -> tuple[Any, ...]:
        vc = p.vm
        return (vc.vm_id, hashlib.sha256(vc.code).hexdigest(), vc.configuration,
                tuple(sorted(vc.environment.items())), vc.runtime)

    def _get_vm(self, p: PluginRuntime) -> Vm:
        key = self._vm_key(p.config)
        vm = self.vms.get(key)
        if vm is not None and not vm.failed:
            return vm
        vm = Vm(self, key, p.config.vm, self.limits, p.name)
        vm.load()
        self.vms[key] = vm
        self.all_vms.append(vm)
        vm.initialize()
        return vm

    def _start_plugin(self, p: PluginRuntime) -> None:
        vm = self._get_vm(p)
        p.vm = vm
        vm.plugins.append(p)
        cid = vm.new_context_id()
        root = RootContext(cid, vm, p)
        vm.contexts[cid] = root
        vm.roots[p.config.root_id.encode()] = root
        p.root = root
        ex = vm.ex
        cfg = p.config
        step = "proxy_on_context_create"
        prev = vm.enter(root)
        vm.configuring = True
        try:
            if ex.proxy_on_context_create is not None:
                ex.proxy_on_context_create(cid, 0)
            step = "proxy_on_vm_start"
            if ex.proxy_on_vm_start is not None and vm.failed is None:
                if not ex.proxy_on_vm_start(cid, len(vm.config.configuration)):
                    raise WasmetoolError(f"plugin {cfg.name}: proxy_on_vm_start returned false",
                                         "check the VM configuration and the plugin's log")
            step = "proxy_on_configure"
            if ex.proxy_on_configure is not None and vm.failed is None:
                if not ex.proxy_on_configure(cid, len(cfg.configuration)):
                    raise WasmetoolError(f"plugin {cfg.name}: proxy_on_configure returned false "
                                         "(configuration rejected)",
                                         "check the plugin configuration and the plugin's log")
        except GuestTrap as e:
            vm.fail(str(e), step)
            raise WasmetoolError(f"plugin {cfg.name}: {step} failed: {e}",
                                 "see the plugin's log") from None
        finally:
            vm.configuring = False
            vm.leave(prev)
        if vm.failed:
            raise WasmetoolError(f"plugin {cfg.name}: VM failed during start-up: {vm.failed}",
                                 "see the plugin's log")

    def shutdown(self) -> None:
        for vm in self.all_vms:
            if vm.failed:
                vm.close()
                continue
            for p in vm.plugins:
                root = p.root
                if root is None or root.deleted or root.vm is not vm:
                    continue
                if root.timer is not None:
                    root.timer.cancel()
                    root.timer = None
                root.tick_period_ms = 0
                if self._root_call(root, "proxy_on_done") == 1 or vm.ex.proxy_on_done is None:
                    self.finish_root_delete(root)
                else:
                    root.done_pending = True
            vm.close()
        self.vms.clear()
        self.all_vms = []
        if self._ticker:
            EpochTicker.release()
            self._ticker = False
        self.started = False

    def finish_root_delete(self, root: RootContext) -> None:
        if root.deleted:
            return
        self._root_call(root, "proxy_on_delete")
        root.deleted = True
        root.vm.contexts.pop(root.id, None)

    # ------------------------------------------------------------------ server API
    def has_http_filters(self) -> bool:
        return bool(self.http_plugins)

    def has_network_filters(self) -> bool:
        return bool(self.network_plugins)

    def new_http_stream(self, info: StreamInfo, callbacks: HttpStreamCallbacks) -> HttpStream:
        filters: list[_Filter] = []
        stream = HttpStream(self, info, callbacks, filters)
        i = 0
        for p in self.http_plugins:
            vm = p.vm
            root = p.root
            if vm is None or vm.failed or root is None:
                ctx = self._new_stream_context(p, stream, i, False)
            else:   # _new_stream_context's common case, inlined
                cid = vm.next_context_id
                vm.next_context_id = cid + 1
                ctx = vm.contexts[cid] = StreamContext(cid, vm, root, stream, i)
            filters.append(_Filter(p, ctx, i))
            i += 1
        self.http_streams += 1
        return stream

    def new_connection(self, info: StreamInfo, callbacks: ConnectionCallbacks) -> Connection:
        filters: list[_NetFilter] = []
        conn = Connection(self, info, callbacks, filters)
        for i, p in enumerate(self.network_plugins):
            filters.append(_NetFilter(p, self._new_stream_context(p, conn, i, True), i))
        self.count("wasmetool_connections_total")
        return conn

    def _new_stream_context(self, p: PluginRuntime, owner: Any, index: int,
                            create_now: bool) -> StreamContext | None:
        """A stream context (its id allocated now, as Envoy does when it builds the filter
        chain). HTTP contexts are announced with proxy_on_context_create lazily, when the
        stream reaches the filter (HttpStream._create); TCP ones at once."""
        vm = p.vm
        if vm is None or vm.failed or p.root is None:
            if p.config.failure_policy != "fail_reload" or not self._reload(p):
                return None
            vm = p.vm
        root = p.root
        assert vm is not None and root is not None
        cid = vm.next_context_id
        vm.next_context_id = cid + 1
        ctx = StreamContext(cid, vm, root, owner, index)
        vm.contexts[cid] = ctx
        create = vm.ex.proxy_on_context_create
        if create is not None and create_now:
            prev = vm.cur
            vm.cur = vm.eff = ctx
            try:
                create(cid, root.id)
            except GuestTrap as e:
                vm.cur = vm.eff = prev
                vm.fail(str(e), "proxy_on_context_create")
                return None
            vm.cur = vm.eff = prev
        return ctx

    def _reload(self, p: PluginRuntime) -> bool:
        now = self.dispatcher.monotonic_ns()
        if now < p.next_reload_ns:
            return False
        p.next_reload_ns = now + RELOAD_BACKOFF_NS
        old = p.vm
        if old is not None and p in old.plugins:
            old.plugins.remove(p)
        p.vm = None
        p.root = None
        try:
            self._start_plugin(p)
        except WasmetoolError as e:
            self.emit_log(abi.CRITICAL, p.name, 0, f"fail_reload: new VM failed to start: {e}")
            return False
        p.reloads += 1
        if old is not None and not old.plugins and old in self.all_vms:
            self.all_vms.remove(old)          # nothing will call it again: let it go
            old.close()
        self.count("wasmetool_vm_reloads_total")
        self.emit_log(abi.WARN, p.name, 0, "fail_reload: started a fresh VM")
        return True

    def prometheus_text(self) -> str:
        """Plugin metrics and host counters of the whole process (every host sharing
        this one's state)."""
        counters: dict[str, int] = {}
        streams = 0
        for host in list(self.shared.hosts):
            streams += host.http_streams
            for name, value in dict(host.counters).items():
                counters[name] = counters.get(name, 0) + value
        counters["wasmetool_http_streams_total"] = streams
        return self.metrics.prometheus_text(counters)

    # ------------------------------------------------------------------ used by the core
    def count(self, name: str, n: int = 1) -> None:
        c = self.counters
        c[name] = c.get(name, 0) + n

    def emit_log(self, level: int, plugin: str, context_id: int, message: str) -> None:
        sink = self.log_sink
        if sink is not None and level >= self.log_level:
            sink(LogRecord(level, plugin, context_id, message))

    def on_vm_failed(self, vm: Vm) -> None:
        self.count("wasmetool_vm_failures_total")
        for p in vm.plugins:
            root = p.root
            if root is not None and root.timer is not None:
                root.timer.cancel()
                root.timer = None
        waiting = [c for c in vm.contexts.values() if isinstance(c, StreamContext)]
        if waiting:
            def fail_waiting() -> None:
                for ctx in waiting:
                    ctx.owner.on_vm_failed(ctx)
            self.dispatcher.call_soon(fail_waiting)

    def root_call(self, root: RootContext, name: str, *args: int) -> int:
        """A root-context callback, for the runtime's lower half (HostServices)."""
        return self._root_call(root, name, *args)

    def _root_call(self, root: RootContext, name: str, *args: int) -> int:
        vm = root.vm
        if vm.failed or root.deleted:
            return 0
        fn = getattr(vm.ex, name)
        if fn is None:
            return 0
        prev = vm.enter(root)
        try:
            r = fn(root.id, *args)
        except GuestTrap as e:
            vm.leave(prev)
            vm.fail(str(e), name)
            return 0
        vm.leave(prev)
        return r

    # timers ------------------------------------------------------------------------
    def set_tick_period(self, root: RootContext, period_ms: int) -> None:
        if root.timer is not None:
            root.timer.cancel()
            root.timer = None
        root.tick_period_ms = period_ms
        if period_ms > 0:
            self._schedule_tick(root)

    def _schedule_tick(self, root: RootContext) -> None:
        period = root.tick_period_ms

        def fire() -> None:
            if root.timer is not handle[0] or root.deleted or root.vm.failed:
                return
            root.timer = None
            self._root_call(root, "proxy_on_tick")
            if root.timer is None and root.tick_period_ms > 0 and not root.vm.failed \
                    and not root.deleted:
                self._schedule_tick(root)

        handle: list[Any] = [None]
        handle[0] = root.timer = self.dispatcher.call_later(period / 1000.0, fire)

    # queues ------------------------------------------------------------------------
    def queue_ready(self, q: SharedQueue) -> None:
        """A queue this host's VM registered has a new item; the enqueuer may run on
        another worker's thread, so delivery is posted to this host's own."""
        vm, root, token = q.vm, q.root, q.token

        def deliver() -> None:
            if vm.failed or root.deleted:
                return
            self._root_call(root, "proxy_on_queue_ready", token)
        self.dispatcher.post(deliver)

    # http calls --------------------------------------------------------------------
    def start_http_call(self, vm: Vm, root: RootContext, cluster: str, headers: list[Any],
                        body: bytes, trailers: list[Any], timeout_ms: int, ret_ptr: int) -> int:
        if not self.dispatcher.has_cluster(cluster):
            return abi.BAD_ARGUMENT
        names = {k for k, _ in headers}
        if not {b":path", b":method", b":authority"} <= names:
            return abi.BAD_ARGUMENT
        token = vm.next_http_call
        if not vm.mem.put_u32(ret_ptr, token):
            return abi.INVALID_MEMORY_ACCESS
        vm.next_http_call += 1
        vm.http_calls[token] = root
        self.dispatcher.http_call(cluster, headers, body, trailers, timeout_ms,
                                  lambda resp: self._http_call_done(vm, root, token, resp))
        return abi.OK

    def _http_call_done(self, vm: Vm, root: RootContext, token: int,
                        resp: HttpCallResponse | None) -> None:
        vm.http_calls.pop(token, None)
        if vm.failed or root.deleted:
            return
        if resp is None:
            vm.status_code, vm.status_message = abi.BROKEN_CONNECTION, b"reset"
            vm.http_call_response = None
            vm.http_call_body = None
            args = (token, 0, 0, 0)
        else:
            vm.status_code, vm.status_message = abi.OK, b""
            vm.http_call_response = resp
            vm.http_call_body = bytearray(resp.body)
            args = (token, len(resp.headers), len(resp.body), len(resp.trailers))
        try:
            self._root_call(root, "proxy_on_http_call_response", *args)
        finally:
            vm.http_call_response = None
            vm.http_call_body = None
