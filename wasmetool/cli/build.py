"""`wasmetool build`: compile a filter (or take a prebuilt one) into the local store."""

from __future__ import annotations

from pathlib import Path

import typer

from wasmetool.cli.output import check_output, human_size, output_option, print_json

build_app = typer.Typer(
    help=(
        "Build a filter into the local store.\n\n"
        "Example: wasmetool build precompiled filter.wasm -t me/filter:v1"
    ),
    no_args_is_help=True,
)


@build_app.command("precompiled")
def build_precompiled(
    wasm_file: Path = typer.Argument(..., metavar="FILE.wasm", help="A compiled proxy-wasm module."),
    tag: str = typer.Option(..., "--tag", "-t", help="Reference to store it under, e.g. me/filter:v1."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="runtime-config.json to store with it (default: derived from the module)."
    ),
    root_id: str | None = typer.Option(None, "--root-id", help="Root id to record in the runtime config."),
    output: str = output_option(),
) -> None:
    """Store an already-compiled .wasm after checking it is a proxy-wasm filter.

    The module must start with the wasm magic, compile, and export a
    proxy_abi_version_* marker; the ABI version found is reported. Without
    --config, a runtime-config.json is derived (abiVersions from the marker,
    rootIds from --root-id).

    Example: wasmetool build precompiled ./filter.wasm -t me/filter:v1 --root-id my_root
    """
    from wasmetool.build.precompiled import read_file, store_module

    check_output(output)
    wasm = read_file(wasm_file, "module")
    image, info = store_module(wasm, tag, source=str(wasm_file), config_path=config, root_id=root_id)
    report_stored(image, info.abi_version, output)


def report_stored(image, abi_version: str, output: str) -> None:
    """Print what was stored: ref, digest, size, ABI (shared by every build path)."""
    if output == "json":
        print_json(
            {
                "ref": str(image.ref),
                "digest": image.manifest_descriptor.digest,
                "wasmDigest": image.wasm_digest,
                "size": image.wasm_size,
                "abiVersion": abi_version,
            }
        )
        return
    print(f"stored {image.ref.familiar} ({abi_version}, {human_size(image.wasm_size)})")
    print(f"digest {image.manifest_descriptor.digest}")


def register(app: typer.Typer) -> None:
    app.add_typer(build_app, name="build")
