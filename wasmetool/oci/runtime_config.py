"""runtime-config.json: the image config of a wasm filter, as wasme wrote it (camelCase)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wasmetool.errors import WasmetoolError

DEFAULT_TYPE = "envoy_proxy"


@dataclass
class RuntimeConfig:
    type: str = DEFAULT_TYPE
    abi_versions: list[str] = field(default_factory=list)
    root_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "abiVersions": list(self.abi_versions),
            "config": {"rootIds": list(self.root_ids)},
        }

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Any, source: str = "runtime-config.json") -> RuntimeConfig:
        if not isinstance(data, dict):
            raise WasmetoolError(f"{source} must hold a JSON object")
        # wasme's spec once showed snake_case; its code writes camelCase. Accept both.
        abi = data.get("abiVersions", data.get("abi_versions", []))
        config = data.get("config") or {}
        if not isinstance(config, dict):
            raise WasmetoolError(f"{source}: 'config' must be an object")
        roots = config.get("rootIds", config.get("root_ids", []))
        kind = data.get("type", DEFAULT_TYPE)
        if not isinstance(abi, list) or not all(isinstance(v, str) for v in abi):
            raise WasmetoolError(f"{source}: 'abiVersions' must be a list of strings")
        if not isinstance(roots, list) or not all(isinstance(v, str) for v in roots):
            raise WasmetoolError(f"{source}: 'config.rootIds' must be a list of strings")
        if not isinstance(kind, str):
            raise WasmetoolError(f"{source}: 'type' must be a string")
        return cls(type=kind, abi_versions=list(abi), root_ids=list(roots))

    @classmethod
    def from_json_bytes(cls, raw: bytes, source: str = "runtime-config.json") -> RuntimeConfig:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WasmetoolError(f"{source} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source)
