"""One wasm VM: module, store, instance, linked host functions, exports and contexts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wasmtime

from wasmetool.errors import WasmetoolError
from wasmetool.host import abi, engine, fastpath
from wasmetool.host.contexts import Context, RootContext
from wasmetool.host.hostcalls import host_functions
from wasmetool.host.memory import GuestMemory

if TYPE_CHECKING:
    from wasmetool.host.config import Limits, VmConfig
    from wasmetool.host.dispatch import HttpCallResponse
    from wasmetool.host.state import HostServices, PluginState

GuestTrap = fastpath.GuestTrap

# export name -> (params, nresults); params 'i' = i32
CALLBACKS: dict[str, tuple[str, int]] = {
    "proxy_on_memory_allocate": ("i", 1),
    "malloc": ("i", 1),
    "_initialize": ("", 0),
    "_start": ("", 0),
    "main": ("ii", 1),
    "proxy_on_context_create": ("ii", 0),
    "proxy_on_vm_start": ("ii", 1),
    "proxy_on_configure": ("ii", 1),
    "proxy_on_tick": ("i", 0),
    "proxy_on_done": ("i", 1),
    "proxy_on_log": ("i", 0),
    "proxy_on_delete": ("i", 0),
    "proxy_on_new_connection": ("i", 1),
    "proxy_on_downstream_data": ("iii", 1),
    "proxy_on_upstream_data": ("iii", 1),
    "proxy_on_downstream_connection_close": ("ii", 0),
    "proxy_on_upstream_connection_close": ("ii", 0),
    "proxy_on_request_headers": ("iii", 1),
    "proxy_on_response_headers": ("iii", 1),
    "proxy_on_request_body": ("iii", 1),
    "proxy_on_response_body": ("iii", 1),
    "proxy_on_request_trailers": ("ii", 1),
    "proxy_on_response_trailers": ("ii", 1),
    "proxy_on_http_call_response": ("iiiii", 0),
    "proxy_on_grpc_receive_initial_metadata": ("iii", 0),
    "proxy_on_grpc_receive": ("iii", 0),
    "proxy_on_grpc_receive_trailing_metadata": ("iii", 0),
    "proxy_on_grpc_close": ("iii", 0),
    "proxy_on_queue_ready": ("ii", 0),
    "proxy_on_foreign_function": ("iii", 0),
}
CALLBACKS_0_1_0 = {
    "proxy_on_request_headers": ("ii", 1),
    "proxy_on_response_headers": ("ii", 1),
}


def _sig(ft: wasmtime.FuncType) -> tuple[str, str]:
    def enc(ts: list[wasmtime.ValType]) -> str:
        return "".join({"i32": "i", "i64": "I"}.get(str(t), "?") for t in ts)
    return enc(ft.params), enc(ft.results)


def _describe(params: str, results: str) -> str:
    names = {"i": "i32", "I": "i64", "?": "?"}
    return f"({', '.join(names[c] for c in params)}) -> ({', '.join(names[c] for c in results)})"


class Exports:
    """The guest's callbacks as fast callables (None when the module lacks one)."""

    __slots__ = tuple(n for n in CALLBACKS if n not in ("malloc",)) + (
        "allocator", "http_request", "http_response")

    def index_http(self) -> None:
        """The HTTP stream callbacks by direction, indexed by event kind (1 headers, 2 body,
        3 trailers), for the filter manager's hot path."""
        self.http_request = (None, self.proxy_on_request_headers, self.proxy_on_request_body,
                             self.proxy_on_request_trailers)
        self.http_response = (None, self.proxy_on_response_headers,
                              self.proxy_on_response_body, self.proxy_on_response_trailers)


def inspect_module(module: wasmtime.Module, source: str) -> str:
    """Check exports/imports against what the host offers; returns the ABI version."""
    version = None
    exports: dict[str, Any] = {}
    for ex in module.exports:
        exports[ex.name] = ex.type
        if version is None and ex.name in abi.ABI_EXPORTS and isinstance(ex.type, wasmtime.FuncType):
            version = abi.ABI_EXPORTS[ex.name]
    problems: list[str] = []
    if version is None:
        raise WasmetoolError(
            f"{source} is not a proxy-wasm module: it exports none of "
            "proxy_abi_version_0_2_1, proxy_abi_version_0_2_0, proxy_abi_version_0_1_0",
            "build it with a proxy-wasm SDK (Rust, Go, C++, AssemblyScript)")
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        problems.append("missing export memory")
    if "malloc" not in exports and "proxy_on_memory_allocate" not in exports:
        problems.append("missing export malloc or proxy_on_memory_allocate")
    table = dict(CALLBACKS)
    if version == abi.ABI_0_1_0:
        table.update(CALLBACKS_0_1_0)
    for name, ty in exports.items():
        want = table.get(name)
        if want is None:
            continue
        if not isinstance(ty, wasmtime.FuncType):
            problems.append(f"export {name} is not a function")
            continue
        params, results = _sig(ty)
        if (params, results) != (want[0], "i" * want[1]):
            if name == "main":      # a WASI command's main(argc, argv) shape varies; not required
                continue
            problems.append(f"mistyped export {name}: module has {_describe(params, results)}, "
                            f"host calls {_describe(want[0], 'i' * want[1])}")
    offered = {(f.module, f.name): f for f in host_functions(version)}
    every = {(f.module, f.name) for f in host_functions(abi.ABI_0_1_0)} | \
        {(f.module, f.name) for f in host_functions(abi.ABI_0_2_1)}
    for imp in module.imports:
        key = (imp.module, imp.name or "")
        f = offered.get(key)
        ty = imp.type
        if f is None:
            extra = f" (not available to ABI {version.replace('_', '.')} modules)" \
                if key in every else ""
            problems.append(f"unknown import {imp.module}.{imp.name}{extra}")
            continue
        if not isinstance(ty, wasmtime.FuncType):
            problems.append(f"import {imp.module}.{imp.name} must be a function")
            continue
        params, results = _sig(ty)
        if params != f.params or results != ("i" if f.result else ""):
            problems.append(f"mistyped import {imp.module}.{imp.name}: module wants "
                            f"{_describe(params, results)}, host provides "
                            f"{_describe(f.params, 'i' if f.result else '')}")
    if problems:
        raise WasmetoolError(f"{source} cannot be loaded: " + "; ".join(problems),
                             "rebuild the filter against a proxy-wasm SDK for ABI 0.1.0-0.2.1")
    return version


class Vm:
    def __init__(self, host: HostServices, key: tuple[Any, ...], config: VmConfig, limits: Limits,
                 name: str) -> None:
        self.host = host
        self.key = key
        self.config = config
        self.limits = limits
        self.name = name                         # first plugin's name, for messages
        self.plugins: list[PluginState] = []
        self.roots: dict[bytes, RootContext] = {}
        self.contexts: dict[int, Context] = {}
        self.next_context_id = 1
        self.failed: str | None = None
        self.started = False
        self.cur: Context | None = None
        self.eff: Context | None = None
        self.vm_context = Context(0, self, None)
        self.http_call_response: HttpCallResponse | None = None
        self.http_call_body: bytearray | None = None
        self.foreign_args: bytearray | None = None
        self.status_code = 0
        self.status_message = b""
        self.in_allocator = False
        self.raw = fastpath.fastpath_enabled()
        self.store: wasmtime.Store | None = None
        self.mem: GuestMemory = None  # type: ignore[assignment]
        self.ex = Exports()
        self.abi = ""
        self.sha256 = ""
        self.cache_hit = False
        self._keep: list[Any] = []
        self.metric_ids: dict[tuple[int, str], int] = {}
        self.metric_names: dict[int, Any] = {}
        self.next_metric_id = 0
        self.http_calls: dict[int, RootContext] = {}
        self.next_http_call = 1
        self.grpc: Any = None        # grpc_calls.VmGrpc, made by the first gRPC host call
        self.configuring = False     # in proxy_on_vm_start/_configure: buffer 7 is readable

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        source = self.config.code_source
        module, self.sha256, self.cache_hit = engine.load_module(self.config.code, source)
        self.abi = inspect_module(module, source)
        eng = engine.engine()
        store = wasmtime.Store(eng)
        store.set_limits(memory_size=self.limits.memory_limit_bytes)
        self.store = store
        self.calls = fastpath.CallState(store, engine.deadline_ticks(self.limits.call_timeout_ms))
        linker = wasmtime.Linker(eng)
        wanted = {(imp.module, imp.name) for imp in module.imports}
        observer = self.host.observer
        for f in host_functions(self.abi):
            if (f.module, f.name) not in wanted:
                continue
            fn = f.fn if observer is None else observer.wrap_host_function(self, f.name, f.fn)
            fastpath.define_host_function(linker, f.module, f.name, f.params, f.result, fn,
                                          self, self._host_error, self.raw, self._keep)
        self._linker = linker
        self.calls.depth = 1          # instantiation runs the start function, if any
        store.set_epoch_deadline(self.calls.deadline_ticks)
        try:
            instance = linker.instantiate(store, module)
        except wasmtime.Trap as t:
            raise WasmetoolError(f"{source}: instantiation trapped: {fastpath.describe_error(t.message)}",
                                 "the module's start function failed") from None
        except wasmtime.WasmtimeError as e:
            first = str(e).strip().splitlines()[0]
            raise WasmetoolError(f"{source} cannot be instantiated: {first}",
                                 "check the memory limit and the module's imports") from None
        finally:
            self.calls.depth = 0
        exports = instance.exports(store)
        self.mem = GuestMemory(exports["memory"], store)
        self.mem.on_fault = self._memory_fault
        table = dict(CALLBACKS)
        if self.abi == abi.ABI_0_1_0:
            table.update(CALLBACKS_0_1_0)
        ex = self.ex
        for name in Exports.__slots__:
            setattr(ex, name, None)
        for name, (params, nres) in table.items():
            item = exports.get(name)
            if not isinstance(item, wasmtime.Func):
                continue
            if _sig(item.type(store)) != (params, "i" * nres):
                continue        # only `main` may differ (inspect_module refused the rest)
            caller = fastpath.make_export_caller(self.calls, item, params, nres, self.raw)
            if observer is not None:
                caller = observer.wrap_callback(self, name, caller)
            if name == "malloc":
                ex.allocator = caller
            elif name in Exports.__slots__:
                setattr(ex, name, caller)
        if ex.allocator is None:
            ex.allocator = ex.proxy_on_memory_allocate
        if self.abi == abi.ABI_0_1_0:
            for name in ("proxy_on_request_headers", "proxy_on_response_headers"):
                two = getattr(ex, name)
                if two is not None:
                    setattr(ex, name, _drop_eos(two))
        ex.index_http()

    def initialize(self) -> None:
        """Envoy's start: _initialize (then main(0, 0)) or _start."""
        ex = self.ex
        self.enter(self.vm_context)
        try:
            if ex._initialize is not None:
                ex._initialize()
                if ex.main is not None:
                    ex.main(0, 0)
            elif ex._start is not None:
                ex._start()
        except GuestTrap as e:
            raise WasmetoolError(f"{self.config.code_source}: start-up (_initialize/_start) "
                                 f"failed: {e}", "see the plugin's log above") from None
        finally:
            self.leave(None)
        self.started = True

    # ------------------------------------------------------------------ contexts
    def new_context_id(self) -> int:
        cid = self.next_context_id
        self.next_context_id += 1
        return cid

    def enter(self, ctx: Context) -> Context | None:
        prev = self.cur
        self.cur = ctx
        self.eff = ctx
        return prev

    def leave(self, prev: Context | None) -> None:
        self.cur = prev
        self.eff = prev

    def ctx(self) -> Context:
        eff = self.eff
        if eff is not None and not eff.deleted:
            return eff
        cur = self.cur
        return cur if cur is not None else self.vm_context

    # ------------------------------------------------------------------ memory helpers
    def alloc(self, size: int) -> int:
        """Guest memory from the guest's allocator (malloc, else proxy_on_memory_allocate)."""
        alloc = self.ex.allocator
        if alloc is None or self.failed:
            return 0
        self.in_allocator = True
        try:
            return alloc(size) & 0xFFFFFFFF
        except GuestTrap as e:
            self.fail(f"allocator trapped: {e}", "proxy_on_memory_allocate")
            raise fastpath.AbortGuest(str(e)) from None
        finally:
            self.in_allocator = False

    def copy_out(self, data: bytes, ptr_ptr: int, size_ptr: int) -> int:
        """Envoy's copyToPointerSize: allocate, copy, write pointer and size."""
        n = len(data)
        ptr = 0
        if n:
            ptr = self.alloc(n)
            if not ptr or not self.mem.write(ptr, data):
                return abi.INVALID_MEMORY_ACCESS
        mem = self.mem
        if not mem.put_u32(ptr_ptr, ptr) or not mem.put_u32(size_ptr, n):
            return abi.INVALID_MEMORY_ACCESS
        return abi.OK

    # ------------------------------------------------------------------ failures & logs
    def _memory_fault(self, ptr: int, size: int) -> None:
        """A host call was given memory outside the guest's: it answers as Envoy does
        (INVALID_MEMORY_ACCESS, or WASI's FAULT); logged at debug level, and the host's
        on_memory_fault hook (the test API's strict mode) hears of it."""
        host = self.host
        host.count("wasmetool_memory_faults_total")
        message = (f"host call given memory outside the guest's: {size} bytes at {ptr:#x}, "
                   f"memory is {self.mem.size} bytes")
        if host.log_level <= abi.DEBUG:
            self.log_host(abi.DEBUG, message)
        hook = host.on_memory_fault
        if hook is not None:
            hook(self.name, message)

    def _host_error(self, name: str, exc: BaseException) -> int:
        try:
            self.log_host(abi.ERROR, f"host function {name} failed: {exc!r}")
        except Exception:  # noqa: BLE001 - never let a logging problem reach wasmtime
            pass
        return abi.INTERNAL_FAILURE

    def fail(self, reason: str, callback: str) -> None:
        if self.failed:
            return
        self.failed = reason
        if self.grpc is not None:       # a dead VM's gRPC streams are reset
            self.grpc.cancel_all()
        self.log_host(abi.CRITICAL, f"wasm VM failed in {callback}: {reason}; "
                      "the VM will not be called again")
        self.host.on_vm_failed(self)

    def log_host(self, level: int, message: str, context_id: int | None = None) -> None:
        cur = self.cur
        plugin = self.name
        if cur is not None and cur.root is not None:
            plugin = cur.root.plugin.config.name
        self.host.emit_log(level, plugin, cur.id if context_id is None and cur else
                           (context_id or 0), message)

    def close(self) -> None:
        for root in list(self.roots.values()) + [p.root for p in self.plugins if p.root]:
            if root.timer is not None:
                root.timer.cancel()
                root.timer = None
        if self.grpc is not None:
            self.grpc.cancel_all()
        if self.mem is not None:
            self.mem.close()
        self.contexts.clear()


def _drop_eos(fn: Callable[..., int]) -> Callable[[int, int, int], int]:
    def call(ctx: int, n: int, _eos: int) -> int:
        return fn(ctx, n)
    return call
