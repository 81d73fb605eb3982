"""Where wasmetool keeps things.

XDG base directories by default; ``WASMETOOL_HOME`` overrides all of them, which
is what tests use to get an isolated store, cache and credential file.
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    if value:
        return Path(value) / "wasmetool"
    return Path.home() / fallback / "wasmetool"


def _home_override() -> Path | None:
    value = os.environ.get("WASMETOOL_HOME")
    return Path(value) if value else None


def data_dir() -> Path:
    override = _home_override()
    return override / "data" if override else _xdg("XDG_DATA_HOME", ".local/share")


def config_dir() -> Path:
    override = _home_override()
    return override / "config" if override else _xdg("XDG_CONFIG_HOME", ".config")


def cache_dir() -> Path:
    override = _home_override()
    return override / "cache" if override else _xdg("XDG_CACHE_HOME", ".cache")


def store_dir() -> Path:
    """The local OCI image layout holding built and pulled filters."""
    return data_dir() / "store"


def config_file() -> Path:
    return config_dir() / "config.toml"
