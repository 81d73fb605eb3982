"""Which platform versions each language's SDK can run on.

A platform version is a minor line, ``MAJOR.MINOR`` (``1.25``; ``1.25.3`` and
``1.25.x`` are accepted and normalised). Any line at or above a language's
minimum is accepted, so new Envoy/Istio releases need no wasmetool update.

Minimums and why:

* Go (``tinygo``): the maintained Go SDK is compiled by upstream Go as a WASI
  reactor and needs host imports first shipped in **Envoy 1.33**; Istio's first
  line on Envoy 1.33 is **Istio 1.25**; Gloo Edge's is **1.19**.
* Rust, C++, AssemblyScript: their modules use ABI 0.2.x, served by **Envoy
  1.17+**; on Istio, wasmetool deploys through the WasmPlugin API (**Istio
  1.12+**); Gloo Edge runs ABI 0.2.x from **1.6** (wasme's ABI table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wasmetool.errors import WasmetoolError

PLATFORMS: tuple[str, ...] = ("istio", "envoy", "gloo")
DEFAULT_PLATFORM = "istio"
# The newest line offered by default (and the top of the interactive list).
DEFAULT_VERSIONS: dict[str, str] = {"istio": "1.28", "envoy": "1.40", "gloo": "1.19"}

_ABI_02_MINIMUMS = {"istio": (1, 12), "envoy": (1, 17), "gloo": (1, 6)}
MINIMUM_VERSIONS: dict[str, dict[str, tuple[int, int]]] = {
    "tinygo": {"istio": (1, 25), "envoy": (1, 33), "gloo": (1, 19)},
    "rust": dict(_ABI_02_MINIMUMS),
    "cpp": dict(_ABI_02_MINIMUMS),
    "assemblyscript": dict(_ABI_02_MINIMUMS),
}
WHY_MINIMUM: dict[str, str] = {
    "tinygo": "the Go SDK (upstream Go, wasip1 reactor) needs Envoy 1.33+ host support",
    "rust": "proxy-wasm ABI 0.2.x modules need Envoy 1.17+ / Istio 1.12+ (WasmPlugin)",
    "cpp": "proxy-wasm ABI 0.2.x modules need Envoy 1.17+ / Istio 1.12+ (WasmPlugin)",
    "assemblyscript": "proxy-wasm ABI 0.2.x modules need Envoy 1.17+ / Istio 1.12+ (WasmPlugin)",
}

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(?:\d+|x))?$")


@dataclass(frozen=True)
class PlatformTarget:
    platform: str
    version: str  # normalised MAJOR.MINOR


def parse_version(text: str) -> tuple[int, int]:
    match = _VERSION.match(text.strip())
    if not match:
        raise WasmetoolError(
            f"platform version '{text}' is not a version line",
            "give MAJOR.MINOR, for example 1.25",
        )
    return int(match.group(1)), int(match.group(2))


def minimum(language: str, platform: str) -> str:
    major, minor = MINIMUM_VERSIONS[language][platform]
    return f"{major}.{minor}"


def check_platform(language: str, platform: str, version: str | None) -> PlatformTarget:
    """Validate (and normalise) a language/platform/version combination."""
    platform = platform.strip().lower()
    if platform not in PLATFORMS:
        raise WasmetoolError(f"unknown platform '{platform}'",
                             "choose one of: " + ", ".join(PLATFORMS))
    if version is None:
        version = DEFAULT_VERSIONS[platform]
    major, minor = parse_version(version)
    lowest = MINIMUM_VERSIONS[language][platform]
    if (major, minor) < lowest:
        raise WasmetoolError(
            f"{language} filters cannot run on {platform} {major}.{minor}: "
            f"{WHY_MINIMUM[language]}",
            f"use --platform-version {minimum(language, platform)} or newer",
        )
    return PlatformTarget(platform, f"{major}.{minor}")


def offered_versions(language: str, platform: str) -> list[str]:
    """Lines offered by the interactive prompt: newest default first, down to the minimum."""
    top_major, top_minor = parse_version(DEFAULT_VERSIONS[platform])
    low_major, low_minor = MINIMUM_VERSIONS[language][platform]
    if top_major != low_major:  # all supported platforms are 1.x; keep the list finite
        return [DEFAULT_VERSIONS[platform]]
    return [f"{top_major}.{m}" for m in range(top_minor, low_minor - 1, -1)]


def support_table() -> list[tuple[str, str, str, str]]:
    """(language, istio, envoy, gloo) minimums, for docs and `init --help`."""
    rows = []
    for language, mins in MINIMUM_VERSIONS.items():
        rows.append((language, *(f"{mins[p][0]}.{mins[p][1]}+" for p in PLATFORMS)))
    return rows
