"""Calls between Python and wasm: wasmtime's raw bindings, with the public API as fallback.

wasmtime-py's public call path costs ~30 µs per export call (it rebuilds the FuncType and
converts every argument through ``Val``); its C API's *unchecked* entry points cost ~2 µs.
This module is the only place that touches ``wasmtime._bindings``:

* export calls: ``wasmtime_func_call_unchecked`` with one preallocated ``wasmtime_val_raw_t``
  buffer per export (args in, results out);
* host functions: ``wasmtime_linker_define_func_unchecked`` with a callback that reads its
  arguments straight out of the raw value buffer.

Set ``WASMETOOL_HOST_FASTPATH=0`` to use the public API (``Func.__call__`` and
``Linker.define_func``); the fallback is also chosen when the private bindings are missing.
Both paths hand host functions the same values: i32 arguments as unsigned ints, i64
arguments as signed ints, and both turn traps into :class:`GuestTrap`.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

import wasmtime

from wasmetool.host.epoch import CLOCK

try:  # private, version-pinned (wasmtime 50.x)
    from wasmtime import _bindings as _ffi

    _dll = _ffi.dll
    _RAW_OK = all(hasattr(_dll, n) for n in (
        "wasmtime_func_call_unchecked", "wasmtime_linker_define_func_unchecked",
        "wasmtime_context_set_epoch_deadline", "wasmtime_trap_new"))
except Exception:  # noqa: BLE001 - any import problem means: use the public API
    _ffi = None  # type: ignore[assignment]
    _RAW_OK = False


class GuestTrap(Exception):
    """The guest trapped, ran out of time, or failed inside a call."""

    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class AbortGuest(Exception):  # noqa: N818 - it is a control-flow signal, not an error report
    """Raised by a host function to make the calling guest trap."""


def fastpath_enabled() -> bool:
    return _RAW_OK and os.environ.get("WASMETOOL_HOST_FASTPATH", "1") not in ("0", "false", "no")


# i32 parameters as 'i', i64 parameters as 'I'
Sig = str
HostFn = Callable[..., Any]
ErrorHook = Callable[[str, BaseException], int]


def _trap_message(trap: Any) -> tuple[str, bool]:
    timeout = trap.trap_code == wasmtime.TrapCode.INTERRUPT
    if timeout:
        return "deadline exceeded (the call ran too long)", True
    return describe_error(trap.message), False


def describe_error(text: str) -> str:
    """One line from wasmtime's multi-line trap text: the cause, and the innermost frame."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    cause = next((ln.split(":", 1)[1].strip() for ln in reversed(lines)
                  if ln.startswith("wasm trap:")), "")
    if not cause:
        after = lines[lines.index("Caused by:") + 1:] if "Caused by:" in lines else []
        cause = after[0] if after else (lines[0] if lines else "trap")
    frame = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("0:")), "")
    if " - " in frame:
        frame = frame.split(" - ", 1)[1]
    return f"{cause} (in {frame})" if frame else cause


# ----------------------------------------------------------------------------- raw path
if _RAW_OK:
    _c_void_p = ctypes.c_void_p
    # wasmtime_func_call_unchecked(ctx, func, args_and_results, n, trap_out) without argtypes:
    # called with prebuilt ctypes objects it skips the per-argument from_param conversion
    # (~0.2 µs per call); the GIL is released during the call, as for any CDLL function.
    _CALL_PREBUILT = _dll._FuncPtr(("wasmtime_func_call_unchecked", _dll))
    _CALL_PREBUILT.argtypes = None
    _CALL_PREBUILT.restype = _c_void_p
    _SET_DEADLINE = ctypes.CFUNCTYPE(None, _c_void_p, ctypes.c_uint64)(
        ("wasmtime_context_set_epoch_deadline", _dll))
    RAW_CB = ctypes.CFUNCTYPE(ctypes.c_size_t, _c_void_p, _c_void_p,
                              ctypes.POINTER(ctypes.c_uint32), ctypes.c_size_t)
    _DEFINE = ctypes.CFUNCTYPE(_c_void_p, _c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                               ctypes.c_char_p, ctypes.c_size_t, _c_void_p, RAW_CB,
                               _c_void_p, _c_void_p)(
        ("wasmtime_linker_define_func_unchecked", _dll))


def epoch_incrementer(eng: wasmtime.Engine) -> Callable[[], None]:
    """``eng.increment_epoch`` for the ticker thread. On the raw path it keeps the GIL (an
    atomic add in wasmtime): one GIL hand-over per tick instead of two, since a call that
    releases the GIL must then win it back from the busy event loop."""
    if not (fastpath_enabled() and hasattr(_dll, "wasmtime_engine_increment_epoch")):
        return eng.increment_epoch
    inc = ctypes.PYFUNCTYPE(None, _c_void_p)(("wasmtime_engine_increment_epoch", _dll))
    ptr = _c_void_p(ctypes.cast(eng.ptr(), _c_void_p).value)

    def increment() -> None:
        inc(ptr)

    increment._keep = (eng, inc, ptr)  # type: ignore[attr-defined]
    return increment


def _raise_raw(err: int | None, trap: ctypes.c_void_p) -> None:
    if trap.value:
        t = wasmtime.Trap._from_ptr(ctypes.cast(trap.value, ctypes.POINTER(_ffi.wasm_trap_t)))
        trap.value = None
        msg, timeout = _trap_message(t)
        raise GuestTrap(msg, timeout)
    e = wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(_ffi.wasmtime_error_t)))
    raise GuestTrap(describe_error(str(e)))


class CallState:
    """Per-VM state shared by its export callers: nesting depth and the call deadline."""

    __slots__ = ("depth", "deadline_ticks", "ctx_addr", "store", "armed_at")

    def __init__(self, store: wasmtime.Store, deadline_ticks: int) -> None:
        self.depth = 0
        self.armed_at = -1          # CLOCK.epoch when the deadline was last armed
        self.deadline_ticks = deadline_ticks
        self.store = store
        self.ctx_addr = ctypes.cast(store._context(), ctypes.c_void_p).value if _RAW_OK else 0


def make_export_caller(state: CallState, func: wasmtime.Func, params: Sig, nresults: int,
                       raw: bool) -> Callable[..., int]:
    """A callable ``f(*args) -> int`` (first result, or 0) that runs the export with a deadline."""
    if raw:
        return _make_raw_caller(state, func, params, nresults)
    return _make_public_caller(state, func, params, nresults)


def _make_raw_caller(state: CallState, func: wasmtime.Func, params: Sig,
                     nresults: int) -> Callable[..., int]:
    n = max(len(params), nresults, 1)
    buf = (ctypes.c_uint32 * (4 * n))()
    b64 = (ctypes.c_int64 * (2 * n)).from_buffer(buf)
    baddr = ctypes.addressof(buf)
    faddr = ctypes.addressof(func._func)
    trap = ctypes.c_void_p()
    taddr = ctypes.addressof(trap)
    ctx = state.ctx_addr
    clock = CLOCK
    set_deadline = _SET_DEADLINE
    # prebuilt arguments for the argtypes-less call (see _CALL_PREBUILT)
    p_ctx = _c_void_p(ctx)
    p_func = _c_void_p(faddr)
    p_buf = _c_void_p(baddr)
    p_n = ctypes.c_size_t(n)
    p_trap = _c_void_p(taddr)
    call = _CALL_PREBUILT
    keep = (buf, b64, func, trap, p_ctx, p_func, p_buf, p_n, p_trap)

    def run() -> int:
        if state.depth == 0 and state.armed_at != clock.epoch:
            state.armed_at = clock.epoch
            set_deadline(ctx, state.deadline_ticks)
        state.depth += 1
        err = call(p_ctx, p_func, p_buf, p_n, p_trap)
        state.depth -= 1
        if err or trap:         # a NULL c_void_p is false
            _raise_raw(err, trap)
        return buf[0]

    if "I" in params:
        def call_any(*args: int) -> int:
            for k, (kind, v) in enumerate(zip(params, args, strict=True)):
                if kind == "I":
                    b64[2 * k] = v
                else:
                    buf[4 * k] = v & 0xFFFFFFFF
            return run()
        call_any._keep = keep  # type: ignore[attr-defined]
        return call_any

    # arity-specialised closures: this is the per-request hot path
    def c0() -> int:
        if state.depth == 0 and state.armed_at != clock.epoch:
            state.armed_at = clock.epoch
            set_deadline(ctx, state.deadline_ticks)
        state.depth += 1
        err = call(p_ctx, p_func, p_buf, p_n, p_trap)
        state.depth -= 1
        if err or trap:         # a NULL c_void_p is false
            _raise_raw(err, trap)
        return buf[0]

    def c1(a: int) -> int:
        buf[0] = a
        if state.depth == 0 and state.armed_at != clock.epoch:
            state.armed_at = clock.epoch
            set_deadline(ctx, state.deadline_ticks)
        state.depth += 1
        err = call(p_ctx, p_func, p_buf, p_n, p_trap)
        state.depth -= 1
        if err or trap:         # a NULL c_void_p is false
            _raise_raw(err, trap)
        return buf[0]

    def c2(a: int, b: int) -> int:
        buf[0] = a
        buf[4] = b
        if state.depth == 0 and state.armed_at != clock.epoch:
            state.armed_at = clock.epoch
            set_deadline(ctx, state.deadline_ticks)
        state.depth += 1
        err = call(p_ctx, p_func, p_buf, p_n, p_trap)
        state.depth -= 1
        if err or trap:         # a NULL c_void_p is false
            _raise_raw(err, trap)
        return buf[0]

    def c3(a: int, b: int, c: int) -> int:
        buf[0] = a
        buf[4] = b
        buf[8] = c
        if state.depth == 0 and state.armed_at != clock.epoch:
            state.armed_at = clock.epoch
            set_deadline(ctx, state.deadline_ticks)
        state.depth += 1
        err = call(p_ctx, p_func, p_buf, p_n, p_trap)
        state.depth -= 1
        if err or trap:         # a NULL c_void_p is false
            _raise_raw(err, trap)
        return buf[0]

    def cn(*args: int) -> int:
        for k, v in enumerate(args):
            buf[4 * k] = v
        return run()

    fn = {0: c0, 1: c1, 2: c2, 3: c3}.get(len(params), cn)
    fn._keep = keep  # type: ignore[attr-defined]
    return fn


def _make_public_caller(state: CallState, func: wasmtime.Func, params: Sig,
                        nresults: int) -> Callable[..., int]:
    store = state.store
    clock = CLOCK

    def call(*args: int) -> int:
        conv = [v if kind == "I" else _s32(v) for kind, v in zip(params, args, strict=True)]
        if state.depth == 0 and state.armed_at != clock.epoch:
            state.armed_at = clock.epoch
            store.set_epoch_deadline(state.deadline_ticks)
        state.depth += 1
        try:
            result = func(store, *conv)
        except wasmtime.Trap as t:
            msg, timeout = _trap_message(t)
            raise GuestTrap(msg, timeout) from None
        except GuestTrap:
            raise
        except AbortGuest as e:
            raise GuestTrap(str(e)) from None
        except wasmtime.WasmtimeError as e:
            raise GuestTrap(describe_error(str(e))) from None
        finally:
            state.depth -= 1
        if nresults == 0 or result is None:
            return 0
        if isinstance(result, list):
            result = result[0]
        return int(result) & 0xFFFFFFFF

    return call


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v >= 0x80000000 else v


def _s64(v: int) -> int:
    return v - 0x10000000000000000 if v >= 0x8000000000000000 else v


# ------------------------------------------------------------------------- host functions
def _functype(params: Sig, result: bool) -> wasmtime.FuncType:
    i32 = wasmtime.ValType.i32()
    i64 = wasmtime.ValType.i64()
    return wasmtime.FuncType([i64 if k == "I" else i32 for k in params], [i32] if result else [])


def define_host_function(linker: wasmtime.Linker, module: str, name: str, params: Sig,
                         result: bool, fn: HostFn, bound: Any, on_error: ErrorHook,
                         raw: bool, keep: list[Any]) -> None:
    """Define ``module.name`` in ``linker`` calling ``fn(bound, *args)``.

    ``on_error(name, exc)`` turns an unexpected Python exception into a status; AbortGuest
    makes the guest trap. Nothing else can escape into wasmtime.
    """
    if raw:
        _define_raw(linker, module, name, params, result, fn, bound, on_error, keep)
    else:
        _define_public(linker, module, name, params, result, fn, bound, on_error)


def _arg_exprs(params: Sig) -> list[str]:
    out = []
    for k, kind in enumerate(params):
        if kind == "I":
            out.append(f"_s64(v[{4 * k}] | (v[{4 * k + 1}] << 32))")
        else:
            out.append(f"v[{4 * k}]")
    return out


_FACTORIES: dict[tuple[str, bool], Callable[..., Any]] = {}


def _factory(params: Sig, result: bool) -> Callable[..., Any]:
    """A compiled ``make(fn, bound, on_error, name) -> callback`` for one wasm signature."""
    key = (params, result)
    make = _FACTORIES.get(key)
    if make is not None:
        return make
    args = ", ".join(["bound"] + _arg_exprs(params))
    call = f"v[0] = fn({args})" if result else f"fn({args})"
    err = "v[0] = on_error(name, e)" if result else "on_error(name, e)"
    src = (
        "def make(fn, bound, on_error, name):\n"
        "    def cb(env, caller, v, n):\n"
        "        try:\n"
        f"            {call}\n"
        "        except AbortGuest as e:\n"
        "            msg = str(e).encode() or b'aborted'\n"
        "            return _trap_addr(_trap_new(msg, len(msg)))\n"
        "        except BaseException as e:  # noqa: BLE001\n"
        f"            {err}\n"
        "        return 0\n"
        "    return cb\n"
    )
    ns: dict[str, Any] = {"AbortGuest": AbortGuest, "_s64": _s64,
                          "_trap_new": _ffi.wasmtime_trap_new,
                          "_trap_addr": lambda p: ctypes.cast(p, ctypes.c_void_p).value or 0}
    exec(src, ns)  # noqa: S102 - generated from a fixed template, specialised per signature
    make = _FACTORIES[key] = ns["make"]
    return make


def _define_raw(linker: wasmtime.Linker, module: str, name: str, params: Sig, result: bool,
                fn: HostFn, bound: Any, on_error: ErrorHook, keep: list[Any]) -> None:
    cb = RAW_CB(_factory(params, result)(fn, bound, on_error, name))
    ty = _functype(params, result)
    keep.append(cb)
    keep.append(ty)
    mod_b = module.encode()
    name_b = name.encode()
    linker_ptr = ctypes.cast(linker.ptr(), ctypes.c_void_p).value
    ty_ptr = ctypes.cast(ty.ptr(), ctypes.c_void_p).value
    error = _DEFINE(linker_ptr, mod_b, len(mod_b), name_b, len(name_b), ty_ptr, cb, None, None)
    if error:
        e = wasmtime.WasmtimeError._from_ptr(
            ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))
        raise e


def _define_public(linker: wasmtime.Linker, module: str, name: str, params: Sig, result: bool,
                   fn: HostFn, bound: Any, on_error: ErrorHook) -> None:
    kinds = params

    def py(*args: int) -> int | None:
        conv = [v if k == "I" else v & 0xFFFFFFFF for k, v in zip(kinds, args, strict=True)]
        try:
            r = fn(bound, *conv)
        except AbortGuest:
            raise
        except BaseException as e:  # noqa: BLE001
            r = on_error(name, e)
        return _s32(r) if result else None

    linker.define_func(module, name, _functype(params, result), py)
