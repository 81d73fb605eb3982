"""Bounds-checked access to a guest's linear memory.

The engine is configured with ``memory_may_move = False``, so the base address of a
linear memory never changes: we keep one writable memoryview over it and only rebuild
it when an access goes past the size we know (memory.grow only ever adds pages).

An access outside the memory fails (the host call answers INVALID_MEMORY_ACCESS, as
Envoy does) and is reported to ``on_fault(ptr, size)``: the VM logs it at debug level
and tells the host (strict test modes fail on it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import wasmtime

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class GuestMemory:
    __slots__ = ("_mem", "_store", "view", "size", "on_fault")

    def __init__(self, mem: wasmtime.Memory, store: wasmtime.Store) -> None:
        self._mem = mem
        self._store = store
        self.view = memoryview(b"")
        self.size = 0
        self.on_fault: Callable[[int, int], None] | None = None
        self.refresh()

    def refresh(self) -> None:
        size = self._mem.data_len(self._store)
        if size != self.size or not self.size:
            self.view = memoryview(self._mem.get_buffer_ptr(self._store, size)).cast("B") \
                if size else memoryview(bytearray(0))
            self.size = size

    def close(self) -> None:
        self.view = memoryview(b"")
        self.size = 0

    def _ok(self, ptr: int, end: int) -> bool:
        """The slow path of every access: refresh the view (the memory may have grown);
        an access still outside it is reported to on_fault."""
        if end <= self.size:
            return True
        self.refresh()
        if end <= self.size:
            return True
        if self.on_fault is not None:
            self.on_fault(ptr, end - ptr)
        return False

    def read(self, ptr: int, n: int) -> bytes | None:
        end = ptr + n
        if end > self.size and not self._ok(ptr, end):
            return None
        return bytes(self.view[ptr:end])

    def write(self, ptr: int, data: bytes) -> bool:
        end = ptr + len(data)
        if end > self.size and not self._ok(ptr, end):
            return False
        self.view[ptr:end] = data
        return True

    def put_u32(self, ptr: int, value: int) -> bool:
        if ptr + 4 > self.size and not self._ok(ptr, ptr + 4):
            return False
        _U32.pack_into(self.view, ptr, value & 0xFFFFFFFF)
        return True

    def put_u64(self, ptr: int, value: int) -> bool:
        if ptr + 8 > self.size and not self._ok(ptr, ptr + 8):
            return False
        _U64.pack_into(self.view, ptr, value & 0xFFFFFFFFFFFFFFFF)
        return True

    def get_u32(self, ptr: int) -> int | None:
        if ptr + 4 > self.size and not self._ok(ptr, ptr + 4):
            return None
        return _U32.unpack_from(self.view, ptr)[0]
