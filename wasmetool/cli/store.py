"""Local store commands: list, tag, rm, prune, inspect."""

from __future__ import annotations

from pathlib import Path

import typer

from wasmetool.cli.output import (
    check_output,
    human_size,
    output_option,
    print_json,
    print_table,
    rfc822,
)

TAG_WIDTH = 32  # wasme truncated longer tags unless --wide


def list_images(
    wide: bool = typer.Option(False, "--wide", "-w", help="Show full tags, digests and the store path."),
    output: str = output_option(),
    remote: str | None = typer.Option(
        None, "--remote", metavar="REPO", help="List the tags of a registry repository instead."
    ),
) -> None:
    """List the filters in the local store.

    Columns as wasme printed them: NAME TAG SIZE SHA UPDATED (SHA is the start
    of the module's digest; --wide adds the manifest digest and format).

    Example: wasmetool list --wide
    """
    if remote is not None:
        from wasmetool.cli.registry import print_remote_tags

        print_remote_tags(remote, output)
        return
    from wasmetool.store import Store

    check_output(output)
    store = Store.open()
    images = sorted(store.images(), key=lambda i: (i.ref.familiar_name, i.ref.tag or ""))
    if output == "json":
        print_json(
            [
                {
                    "ref": str(i.ref),
                    "name": i.ref.familiar_name,
                    "tag": i.ref.tag,
                    "digest": i.manifest_descriptor.digest,
                    "wasmDigest": i.wasm_digest,
                    "size": i.wasm_size,
                    "format": i.format,
                    "updated": i.updated.isoformat() if i.updated else None,
                }
                for i in images
            ]
        )
        return
    headers = ["NAME", "TAG", "SIZE", "SHA", "UPDATED"] + (["DIGEST", "FORMAT"] if wide else [])
    rows = []
    for image in images:
        tag = image.ref.tag or "<none>"
        if not wide and len(tag) > TAG_WIDTH:
            tag = tag[: TAG_WIDTH - 3] + "..."
        row = [
            image.ref.familiar_name,
            tag,
            human_size(image.wasm_size),
            image.wasm_digest.split(":", 1)[1][:8],
            rfc822(image.updated),
        ]
        if wide:
            row += [image.manifest_descriptor.digest, image.format]
        rows.append(row)
    print_table(headers, rows)
    if wide:
        print(f"\nstore: {store.root}")


def tag_image(
    source: str = typer.Argument(..., metavar="SRC", help="An image in the local store."),
    target: str = typer.Argument(..., metavar="DST", help="The new reference."),
) -> None:
    """Give a stored image another reference (no data is copied).

    Example: wasmetool tag me/filter:v1 localhost:5000/filter:v1
    """
    from wasmetool.errors import WasmetoolError
    from wasmetool.oci.reference import parse_reference
    from wasmetool.store import Store

    destination = parse_reference(target)
    if destination.digest:
        raise WasmetoolError(f"cannot tag with a digest ({target})", "give a name and tag, e.g. me/filter:v2")
    store = Store.open()
    image = store.resolve(source)
    store.tag(destination, image.manifest_descriptor)
    print(f"tagged {image.ref.familiar} as {destination.familiar}")


def remove_images(
    refs: list[str] = typer.Argument(..., metavar="REF...", help="One or more stored references."),
) -> None:
    """Remove references from the local store and reclaim blobs nothing else uses.

    All references are checked first: if one is unknown, nothing is removed.

    Example: wasmetool rm me/filter:v1 me/filter:v2
    """
    from wasmetool.oci.reference import parse_reference
    from wasmetool.store import Store

    store = Store.open()
    parsed = [parse_reference(r) for r in refs]
    for ref in parsed:
        store.resolve(ref)
    for ref in parsed:
        freed = store.remove(ref)
        print(f"removed {ref.familiar}" + (f" ({human_size(freed)} freed)" if freed else ""))


def prune_store(output: str = output_option()) -> None:
    """Delete blobs that no reference uses any more.

    Example: wasmetool prune
    """
    from wasmetool.store import Store

    check_output(output)
    count, freed = Store.open().prune()
    if output == "json":
        print_json({"blobsRemoved": count, "bytesFreed": freed})
    else:
        print(f"removed {count} unused blob(s), {human_size(freed)} freed")


def inspect_target(
    target: str = typer.Argument(..., metavar="REF|FILE.wasm", help="A stored image or a .wasm file."),
    output: str = output_option(),
) -> None:
    """Show an image's manifest, config, digest, size and ABI, and the module's imports and exports.

    A path to an existing file is inspected as a module; anything else is a
    reference in the local store.

    Example: wasmetool inspect me/filter:v1 -o json
    """
    from wasmetool.builder.precompiled import read_file
    from wasmetool.module_info import inspect_module
    from wasmetool.oci.descriptor import sha256_digest
    from wasmetool.store import Store

    check_output(output)
    path = Path(target)
    data: dict = {}
    if path.is_file() or target.endswith(".wasm"):
        wasm = read_file(path, "module")
        data["file"] = str(path)
        data["wasmDigest"] = sha256_digest(wasm)
    else:
        image = Store.open().resolve(target)
        wasm = image.wasm_bytes()
        data["ref"] = str(image.ref)
        data["digest"] = image.manifest_descriptor.digest
        data["format"] = image.format
        data["wasmDigest"] = image.wasm_digest
        data["manifest"] = image.manifest
        data["config"] = image.runtime_config.to_dict()
        data["updated"] = image.updated.isoformat() if image.updated else None
    info = inspect_module(wasm, target)
    data.update(info.to_dict())
    if output == "json":
        print_json(data)
        return
    if "ref" in data:
        print(f"Ref:          {data['ref']}")
        print(f"Digest:       {data['digest']}")
        print(f"Format:       {data['format']}")
        config = data["config"]
        print(f"Type:         {config['type']}")
        print(f"ABI versions: {', '.join(config['abiVersions']) or '-'}")
        print(f"Root ids:     {', '.join(config['config']['rootIds']) or '-'}")
    else:
        print(f"File:         {data['file']}")
    print(f"Module:       {data['wasmDigest']} ({human_size(info.size)})")
    print(f"Module ABI:   {info.abi_version}")
    print(f"Imports ({len(info.imports)}):")
    for module, name, kind in info.imports:
        print(f"  {module}.{name}: {kind}")
    print(f"Exports ({len(info.exports)}):")
    for name, kind in info.exports:
        print(f"  {name}: {kind}")


def register(app: typer.Typer) -> None:
    app.command("list")(list_images)
    app.command("tag")(tag_image)
    app.command("rm")(remove_images)
    app.command("prune")(prune_store)
    app.command("inspect")(inspect_target)
