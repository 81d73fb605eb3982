#!/usr/bin/env python3
"""Push/pull speed against a local docker-registry, versus curl moving the same bytes.

For a 2 MB and a 20 MB module (incompressible payload in a custom section):

  push   wasmetool (library call: HEAD, POST+PUT per blob, PUT manifest)
         vs curl: POST /blobs/uploads/ + PUT ?digest= of the module bytes
  pull   wasmetool (manifest + blobs, digest checks, written to a fresh store)
         vs curl: GET of the module blob to a file
  re-push of the unchanged image: time and blob uploads (from the registry's log)

Each figure is the median of --repeat runs.  The CLI (`wasmetool push/pull` as a
separate process, including Python start-up) is timed too, for reference.

Run: .venv/bin/python bench/push_pull.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.registry import start_registry  # noqa: E402
from wasmetool.oci.runtime_config import RuntimeConfig  # noqa: E402
from wasmetool.registry.client import TransportOptions  # noqa: E402
from wasmetool.registry.pull import pull_image  # noqa: E402
from wasmetool.registry.push import push_image  # noqa: E402
from wasmetool.store import Store  # noqa: E402

CLI = [str(Path(sys.executable).parent / "wasmetool")]


def module_of(size: int) -> bytes:
    """A valid wasm module of ``size`` bytes: header + one custom section of random bytes."""
    header = b"\0asm\x01\0\0\0"
    name = b"bench"
    body_len = size - len(header) - 1 - 5 - 1 - len(name)
    payload = os.urandom(body_len)
    leb = bytearray()
    value = 1 + len(name) + body_len
    for _ in range(5):  # fixed 5-byte LEB128 so the size is exact
        byte = value & 0x7F
        value >>= 7
        leb.append(byte | 0x80)
    leb[-1] &= 0x7F
    return header + b"\0" + bytes(leb) + bytes([len(name)]) + name + payload


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def run_cli(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([*CLI, *args], check=True, capture_output=True, env=env)


def curl_push(base: str, repo: str, path: Path, digest: str) -> None:
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-D", "-", "-X", "POST", f"{base}/v2/{repo}/blobs/uploads/"],
        capture_output=True, text=True, check=True).stdout
    location = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.lower().startswith("location:"))
    subprocess.run(
        ["curl", "-sS", "-f", "-o", "/dev/null", "-X", "PUT", "-H", "Content-Type: application/octet-stream",
         "--data-binary", f"@{path}", f"{location}&digest={digest}"],
        check=True)


def curl_pull(base: str, repo: str, digest: str, dest: Path) -> None:
    subprocess.run(["curl", "-sS", "-f", "-o", str(dest), f"{base}/v2/{repo}/blobs/{digest}"],
                   check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="wasmetool-bench-"))
    os.environ["WASMETOOL_HOME"] = str(work / "home")
    os.environ["WASMETOOL_KEYRING"] = "file"
    registry = start_registry(work / "registry")
    base = registry.base_url
    transport = TransportOptions(plain_http=True)
    rows = []
    try:
        store = Store.open()
        counter = 0
        for label, size in (("2 MB", 2_000_000), ("20 MB", 20_000_000)):
            wasm = module_of(size)
            wasm_file = work / f"module-{size}.wasm"
            wasm_file.write_bytes(wasm)
            digest = "sha256:" + hashlib.sha256(wasm).hexdigest()
            src = f"{registry.host}/bench/source:{size}"
            store.add_image(wasm, RuntimeConfig(abi_versions=["v0.2.1"]), src)

            push_lib, push_curl, push_cli, pull_lib, pull_curl, pull_cli = ([] for _ in range(6))
            for _ in range(args.repeat):
                counter += 1
                # A fresh repository each time: the registry's HEAD is per repository,
                # so every blob really is uploaded.
                target = f"{registry.host}/bench/push-{counter}:v1"
                push_lib.append(timed(push_image, store, src, target, transport=transport,
                                      progress=False))
                push_curl.append(timed(curl_push, base, f"bench/curl-{counter}", wasm_file, digest))
                push_cli.append(timed(run_cli, "push", src, f"{registry.host}/bench/cli-{counter}:v1"))

                fresh = Store(work / f"pull-store-{counter}")
                pull_lib.append(timed(pull_image, fresh, target, transport=transport, progress=False))
                assert fresh.resolve(target).wasm_bytes() == wasm
                pull_curl.append(timed(curl_pull, base, f"bench/curl-{counter}", digest,
                                       work / "curl.out"))
                env = dict(os.environ, WASMETOOL_HOME=str(work / f"cli-home-{counter}"))
                pull_cli.append(timed(run_cli, "pull", target, env=env))

            repush_target = f"{registry.host}/bench/push-{counter}:v1"
            uploads_before = registry.blob_uploads()
            repush = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = push_image(store, src, repush_target, transport=transport, progress=False)
                repush.append(time.perf_counter() - start)
            repush_uploads = registry.blob_uploads() - uploads_before
            repush_cli = statistics.median(
                timed(run_cli, "push", src, repush_target) for _ in range(3))
            last_uploaded = result.uploaded
            rows.append((label, push_lib, push_curl, push_cli, pull_lib, pull_curl, pull_cli,
                         repush, repush_uploads, repush_cli, last_uploaded))
    finally:
        registry.stop()

    med = statistics.median
    print(f"\nwasmetool push/pull vs curl, local docker-registry 2.8 over plain HTTP "
          f"(median of {args.repeat})\n")
    print(f"{'size':<6} {'op':<5} {'wasmetool':>10} {'curl':>8} {'ratio':>6} {'target':>8} "
          f"{'CLI process':>12}")
    ok = True
    for (label, push_lib, push_curl, push_cli, pull_lib, pull_curl, pull_cli,
         repush, repush_uploads, repush_cli, last_uploaded) in rows:
        for op, lib, curl, cli in (("push", push_lib, push_curl, push_cli),
                                   ("pull", pull_lib, pull_curl, pull_cli)):
            ratio = med(lib) / med(curl)
            ok &= ratio <= 1.5
            print(f"{label:<6} {op:<5} {med(lib):>9.3f}s {med(curl):>7.3f}s {ratio:>5.2f}x "
                  f"{'<=1.5x':>8} {med(cli):>11.3f}s")
        print(f"{label:<6} re-push {med(repush):>7.3f}s, blob uploads: {repush_uploads} "
              f"(target 0 and <=0.2s); CLI process {repush_cli:.3f}s")
        ok &= repush_uploads == 0 and last_uploaded == 0 and med(repush) <= 0.2
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
