"""WASI preview1 as Envoy provides it, under both wasi_snapshot_preview1 and wasi_unstable.

stdout/stderr go to the plugin log (INFO / ERROR, one trailing newline stripped), the
environment comes from the VM config, there are no arguments, no preopened directories,
no files and no sockets. The set and the signatures are Envoy 1.40's (every preview1
function but proc_raise; path_link and path_symlink with Envoy's arities), and the ones with
no meaning here answer the errno Envoy answers.
"""

from __future__ import annotations

import os
import struct
import time
from typing import TYPE_CHECKING

from wasmetool.host import abi
from wasmetool.host.hostcalls.registry import hostcall

if TYPE_CHECKING:
    from wasmetool.host.state import VmState

BOTH = ("wasi_snapshot_preview1", "wasi_unstable")
_IOV = struct.Struct("<II")
RANDOM_MAX = 64 * 1024


def _wasi(name: str, params: str, result: bool = True):  # noqa: ANN202
    return hostcall(name, params, result=result, modules=BOTH)


def _std(fd: int) -> bool:
    return fd in (1, 2)


def _gather(vm: VmState, iovs: int, count: int) -> bytes | None:
    mem = vm.mem
    raw = mem.read(iovs, 8 * count)
    if raw is None:
        return None
    out = []
    for i in range(count):
        ptr, n = _IOV.unpack_from(raw, 8 * i)
        chunk = mem.read(ptr, n)
        if chunk is None:
            return None
        out.append(chunk)
    return b"".join(out)


def _write(vm: VmState, fd: int, iovs: int, count: int, ret: int) -> int:
    if not _std(fd):
        return abi.WASI_BADF
    data = _gather(vm, iovs, count)
    if data is None:
        return abi.WASI_FAULT
    if not vm.mem.put_u32(ret, len(data)):
        return abi.WASI_FAULT
    level = abi.INFO if fd == 1 else abi.ERROR
    if data and level >= vm.host.log_level:
        text = data[:-1] if data.endswith(b"\n") else data
        ctx = vm.ctx()
        plugin = ctx.root.plugin.config.name if ctx.root is not None else vm.name
        vm.host.emit_log(level, plugin, ctx.id, text.decode("utf-8", "replace"))
    return abi.WASI_SUCCESS


@_wasi("fd_write", "iiii")
def fd_write(vm: VmState, fd: int, iovs: int, count: int, ret: int) -> int:
    return _write(vm, fd, iovs, count, ret)


@_wasi("fd_pwrite", "iiiIi")
def fd_pwrite(vm: VmState, fd: int, iovs: int, count: int, _offset: int, ret: int) -> int:
    return _write(vm, fd, iovs, count, ret)


@_wasi("fd_read", "iiii")
def fd_read(vm: VmState, fd: int, iovs: int, count: int, ret: int) -> int:
    return abi.WASI_NOSYS


@_wasi("fd_pread", "iiiIi")
def fd_pread(vm: VmState, fd: int, iovs: int, count: int, offset: int, ret: int) -> int:
    return abi.WASI_NOSYS


@_wasi("fd_fdstat_get", "ii")
def fd_fdstat_get(vm: VmState, fd: int, ret: int) -> int:
    if not _std(fd):
        return abi.WASI_BADF
    # filetype CHARACTER_DEVICE (2), flags APPEND (1), rights: FD_WRITE (1<<6)
    if not vm.mem.write(ret, struct.pack("<BxHxxxxQQ", 2, 1, 1 << 6, 0)):
        return abi.WASI_FAULT
    return abi.WASI_SUCCESS


@_wasi("fd_close", "i")
def fd_close(vm: VmState, fd: int) -> int:
    return abi.WASI_SUCCESS


@_wasi("fd_seek", "iIii")
def fd_seek(vm: VmState, fd: int, offset: int, whence: int, ret: int) -> int:
    return abi.WASI_SUCCESS


@_wasi("fd_prestat_get", "ii")
def fd_prestat_get(vm: VmState, fd: int, ret: int) -> int:
    return abi.WASI_BADF


@_wasi("fd_prestat_dir_name", "iii")
def fd_prestat_dir_name(vm: VmState, fd: int, path: int, size: int) -> int:
    return abi.WASI_NOSYS


@_wasi("fd_filestat_get", "ii")
def fd_filestat_get(vm: VmState, fd: int, ret: int) -> int:
    return abi.WASI_BADF


@_wasi("fd_fdstat_set_flags", "ii")
def fd_fdstat_set_flags(vm: VmState, fd: int, flags: int) -> int:
    return abi.WASI_NOSYS


@_wasi("fd_readdir", "iiiIi")
def fd_readdir(vm: VmState, fd: int, buf: int, size: int, cookie: int, ret: int) -> int:
    return abi.WASI_NOTDIR


@_wasi("fd_renumber", "ii")
def fd_renumber(vm: VmState, fd: int, to: int) -> int:
    return abi.WASI_BADF


def _fd_only(name: str, params: str) -> None:
    def fn(vm: VmState, fd: int, *_rest: int) -> int:
        return abi.WASI_SUCCESS if _std(fd) else abi.WASI_BADF
    fn.__name__ = name
    _wasi(name, params)(fn)


for _name, _params in (
    ("fd_advise", "iIIi"), ("fd_allocate", "iII"), ("fd_datasync", "i"),
    ("fd_fdstat_set_rights", "iII"), ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"), ("fd_sync", "i"), ("fd_tell", "ii"),
):
    _fd_only(_name, _params)


@_wasi("path_open", "iiiiiIIii")
def path_open(vm: VmState, *_args: int) -> int:
    return abi.WASI_NOENT


def _notsup(name: str, params: str) -> None:
    def fn(vm: VmState, *_args: int) -> int:
        return abi.WASI_NOTSUP
    fn.__name__ = name
    _wasi(name, params)(fn)


for _name, _params in (
    ("path_create_directory", "iii"), ("path_filestat_get", "iiiii"),
    # path_link and path_symlink with the (non-WASI) arities Envoy 1.40 registers
    ("path_filestat_set_times", "iiiiIIi"), ("path_link", "iiiiii"),
    ("path_readlink", "iiiiii"), ("path_remove_directory", "iii"), ("path_rename", "iiiiii"),
    ("path_symlink", "iiii"), ("path_unlink_file", "iii"),
    ("sock_accept", "iii"), ("sock_recv", "iiiiii"), ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
):
    _notsup(_name, _params)


@_wasi("args_sizes_get", "ii")
def args_sizes_get(vm: VmState, argc_ptr: int, size_ptr: int) -> int:
    if not vm.mem.put_u32(argc_ptr, 0) or not vm.mem.put_u32(size_ptr, 0):
        return abi.WASI_FAULT
    return abi.WASI_SUCCESS


@_wasi("args_get", "ii")
def args_get(vm: VmState, argv: int, buf: int) -> int:
    return abi.WASI_SUCCESS


def _environ(vm: VmState) -> list[bytes]:
    return [f"{k}={v}".encode() for k, v in vm.config.environment.items()]


@_wasi("environ_sizes_get", "ii")
def environ_sizes_get(vm: VmState, count_ptr: int, size_ptr: int) -> int:
    env = _environ(vm)
    if not vm.mem.put_u32(count_ptr, len(env)) or \
            not vm.mem.put_u32(size_ptr, sum(len(e) + 1 for e in env)):
        return abi.WASI_FAULT
    return abi.WASI_SUCCESS


@_wasi("environ_get", "ii")
def environ_get(vm: VmState, array_ptr: int, buf_ptr: int) -> int:
    mem = vm.mem
    pos = buf_ptr
    for i, entry in enumerate(_environ(vm)):
        if not mem.put_u32(array_ptr + 4 * i, pos) or not mem.write(pos, entry + b"\0"):
            return abi.WASI_FAULT
        pos += len(entry) + 1
    return abi.WASI_SUCCESS


@_wasi("clock_time_get", "iIi")
def clock_time_get(vm: VmState, clock_id: int, _precision: int, ret: int) -> int:
    if clock_id == 0:
        now = time.time_ns()
    elif clock_id == 1:
        now = time.monotonic_ns()
    else:
        return abi.WASI_NOTSUP
    if not vm.mem.put_u64(ret, now):
        return abi.WASI_FAULT
    return abi.WASI_SUCCESS


@_wasi("clock_res_get", "ii")
def clock_res_get(vm: VmState, clock_id: int, ret: int) -> int:
    if clock_id > 1:
        return abi.WASI_NOTSUP
    if not vm.mem.put_u64(ret, 1):
        return abi.WASI_FAULT
    return abi.WASI_SUCCESS


@_wasi("random_get", "ii")
def random_get(vm: VmState, buf: int, size: int) -> int:
    if size > RANDOM_MAX:
        return abi.WASI_INVAL
    if not vm.mem.write(buf, os.urandom(size)):
        return abi.WASI_FAULT
    return abi.WASI_SUCCESS


@_wasi("sched_yield", "")
def sched_yield(vm: VmState) -> int:
    return abi.WASI_SUCCESS


@_wasi("poll_oneoff", "iiii")
def poll_oneoff(vm: VmState, in_ptr: int, out_ptr: int, nsubs: int, ret: int) -> int:
    if not vm.mem.put_u32(ret, 0):
        return abi.WASI_FAULT
    return abi.WASI_SUCCESS


@_wasi("proc_exit", "i", result=False)
def proc_exit(vm: VmState, code: int) -> None:
    vm.log_host(abi.ERROR, f"proc_exit({code}) called; ignored as Envoy does")
