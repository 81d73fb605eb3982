"""Store an already-compiled module: validate it, derive or check its runtime config."""

from __future__ import annotations

from pathlib import Path

from wasmetool.errors import WasmetoolError
from wasmetool.module_info import proxy_abi_version
from wasmetool.oci.reference import parse_reference
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store import Image, Store


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise WasmetoolError(f"{what} {path} does not exist", "check the path") from None
    except IsADirectoryError:
        raise WasmetoolError(f"{what} {path} is a directory, not a file") from None
    except PermissionError:
        raise WasmetoolError(f"cannot read {what} {path}: permission denied") from None


def load_runtime_config(path: Path | None, abi_version: str, root_id: str | None) -> RuntimeConfig:
    """The runtime config to store: the given file, else one derived from the module."""
    if path is not None:
        config = RuntimeConfig.from_json_bytes(read_file(path, "runtime config"), str(path))
        if root_id is not None and root_id not in config.root_ids:
            config.root_ids.insert(0, root_id)
        if not config.abi_versions:
            config.abi_versions = [abi_version]
        return config
    return RuntimeConfig(abi_versions=[abi_version], root_ids=[root_id] if root_id else [])


def store_module(
    wasm: bytes,
    ref: str,
    *,
    source: str,
    config_path: Path | None = None,
    root_id: str | None = None,
    store: Store | None = None,
) -> tuple[Image, str]:
    """Validate ``wasm`` as a proxy-wasm filter and store it under ``ref``; return it and its ABI.

    Everything is checked before anything is written, so a bad module, config
    or reference leaves the store unchanged.
    """
    reference = parse_reference(ref)
    abi_version = proxy_abi_version(wasm, source)
    config = load_runtime_config(config_path, abi_version, root_id)
    target = store or Store.open()
    return target.add_image(wasm, config, reference), abi_version
