"""AssemblyScript filters: node + npm, the compiler pinned by the project's lock file.

Local route: ``npm ci`` when ``node_modules`` is missing or was installed from a
different package.json/package-lock.json, then the project's own compiler,
``asc assembly/index.ts --target release`` (what the template's ``npm run
asbuild`` runs), writing straight to the output path. The container route does the same from a
copy of the project in wasmetool's assemblyscript toolchain image.
"""

from __future__ import annotations

import hashlib
import os
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
from wasmetool.errors import WasmetoolError

ENTRY = "assembly/index.ts"
TARGET = "release"
INSTALL_MARKER = ".wasmetool-installed"
NPM_FLAGS = ("--no-audit", "--no-fund")
PASSED_ENV = ("npm_config_registry", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
              "http_proxy", "https_proxy", "no_proxy")


def manifest_digest(src: Path) -> str:
    """What `npm ci` installed from: package.json + package-lock.json."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        path = src / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


class AssemblyScriptBuilder:
    name = "assemblyscript"
    aliases = ("as",)

    @cached_property
    def node(self) -> str | None:
        return find_tool("node") or find_tool("nodejs")

    @cached_property
    def npm(self) -> str | None:
        return find_tool("npm")

    @cached_property
    def node_version(self) -> str:
        return tool_output([self.node, "--version"]) if self.node else ""

    def missing_local_tools(self, src: Path) -> list[str]:
        missing = []
        if not self.node:
            missing.append("Node.js >= 20 (nodejs.org or your package manager)")
        if not self.npm:
            missing.append("npm (comes with Node.js; Debian: apt-get install npm)")
        return missing

    def toolchain_id(self) -> str:
        return f"node {self.node_version}"

    def cache_inputs(self, src: Path) -> list[Path]:
        # Every script and JSON file (package.json, package-lock.json, asconfig.json,
        # tsconfig.json) except the runtime config, which does not change the module.
        return [path for path in files_under(src, suffixes=(".ts", ".js", ".mjs", ".cjs", ".json"))
                if path.relative_to(src).as_posix() != "runtime-config.json"]

    def needs_install(self, src: Path) -> bool:
        marker = src / "node_modules" / INSTALL_MARKER
        try:
            return marker.read_text().strip() != manifest_digest(src)
        except OSError:
            return True

    def build_local(self, src: Path, out: Path, run: CommandRunner) -> None:
        assert self.node and self.npm, "missing_local_tools() is checked first"
        if not (src / "package.json").is_file():
            raise WasmetoolError(f"{src} has no package.json",
                                 "create the project with wasmetool init --language assemblyscript")
        if self.needs_install(src):
            verb = "ci" if (src / "package-lock.json").is_file() else "install"
            run([self.npm, verb, *NPM_FLAGS], cwd=src)
            (src / "node_modules" / INSTALL_MARKER).write_text(manifest_digest(src) + "\n")
        asc = src / "node_modules" / "assemblyscript" / "bin" / "asc.js"
        if not asc.is_file():
            raise WasmetoolError(f"the AssemblyScript compiler is not installed in {src}",
                                 "add assemblyscript to devDependencies in package.json")
        run([self.node, str(asc), ENTRY, "--target", TARGET, "--outFile", str(out)], cwd=src)

    def container_spec(self, src: Path, out_dir: Path) -> ContainerSpec:
        """npm ci + asc from a copy of the project, in wasmetool's assemblyscript image."""
        from wasmetool.builder.container import cache_mount
        from wasmetool.builder.toolchain_images import image_name

        output = f"{CONTAINER_OUT}/filter.wasm"
        # The source is mounted read-only and copied without node_modules/build, so
        # the container never writes root-owned files into the user's tree.
        script = (
            "set -e; mkdir -p /tmp/project; "
            f"tar -C {CONTAINER_SRC} --exclude=./node_modules --exclude=./build -cf - . "
            "| tar -C /tmp/project -xf -; cd /tmp/project; "
            f"if [ -f package-lock.json ]; then npm ci {' '.join(NPM_FLAGS)}; "
            f"else npm install {' '.join(NPM_FLAGS)}; fi; "
            f"node node_modules/assemblyscript/bin/asc.js {ENTRY} --target {TARGET} "
            f"--outFile {output}"
        )
        env = {"npm_config_cache": "/cache/npm", "npm_config_update_notifier": "false"}
        env.update({k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)})
        return ContainerSpec(
            image=image_name(self.name),
            command=["sh", "-c", script],
            workdir=CONTAINER_SRC,
            env=env,
            mounts=[
                (str(src.resolve()), CONTAINER_SRC, True),
                (str(out_dir.resolve()), CONTAINER_OUT, False),
                (cache_mount("npm"), "/cache/npm", False),
            ],
            output=output,
            user=host_user(),
            labels={"org.wasmetool.builder": "assemblyscript"},
        )
