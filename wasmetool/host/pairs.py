"""Header-map serialization (spec "Serialization"; decoding limits as cpp-host pairs_util)."""

from __future__ import annotations

import struct

_U32 = struct.Struct("<I")
MAX_PAIRS = 1024
MAX_BYTES = 1024 * 1024

Pairs = list[tuple[bytes, bytes]]


def encode(pairs: Pairs) -> bytes:
    """u32 count, count x (u32 key_len, u32 val_len), then key\\0 value\\0 for each pair."""
    if not pairs:
        return b""
    n = len(pairs)
    sizes = []
    data = []
    for k, v in pairs:
        sizes.append(len(k))
        sizes.append(len(v))
        data.append(k)
        data.append(v)
    return struct.pack(f"<{1 + 2 * n}I", n, *sizes) + b"\0".join(data) + b"\0"


def decode(buf: bytes) -> Pairs | None:
    """Parse a serialized map; None when it is malformed (cpp-host then sees an empty map)."""
    size = len(buf)
    if size == 0:
        return []
    if size > MAX_BYTES or size < 4:
        return None if size > 1 else []
    (n,) = _U32.unpack_from(buf, 0)
    if n > MAX_PAIRS:
        return None
    header_end = 4 + 8 * n
    if header_end > size:
        return None
    lens = struct.unpack_from(f"<{2 * n}I", buf, 4)
    pos = header_end
    out: Pairs = []
    for i in range(n):
        kl = lens[2 * i]
        vl = lens[2 * i + 1]
        kend = pos + kl
        if kend >= size or buf[kend] != 0:
            return None
        vstart = kend + 1
        vend = vstart + vl
        if vend >= size or buf[vend] != 0:
            return None
        out.append((bytes(buf[pos:kend]), bytes(buf[vstart:vend])))
        pos = vend + 1
    if pos != size:
        return None
    return out
