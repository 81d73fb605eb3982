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


def _short(digest: str) -> str:
    """The first 12 hex digits of a digest, as `docker images` shows image ids."""
    return digest.split(":", 1)[-1][:12]


def _warn_unhealthy(count: int) -> None:
    import sys

    print(f"warning: {count} image(s) failed their digest check and cannot be used "
          "(see 'wasmetool verify')", file=sys.stderr)


def list_images(
    wide: bool = typer.Option(False, "--wide", "-w",
                              help="Full tags and digests, the module's digest, format, store path."),
    output: str = output_option(),
    remote: str | None = typer.Option(
        None, "--remote", metavar="REPO", help="List the tags of a registry repository instead."
    ),
) -> None:
    """List the filters in the local store.

    Columns: NAME TAG SIZE DIGEST UPDATED. DIGEST is the image's manifest digest
    (the one build, push, pull and inspect print, and NAME@sha256:... pins);
    --wide also shows the MODULE digest (the .wasm layer's). Every blob is
    checked against its digest: an image whose blobs were altered or lost gets
    a STATUS column entry and a warning (see 'wasmetool verify').

    Example: wasmetool list --wide
    """
    if remote is not None:
        from wasmetool.cli.registry import print_remote_tags

        print_remote_tags(remote, output)
        return
    from wasmetool.errors import WasmetoolError
    from wasmetool.store import Image, Store
    from wasmetool.store.verify import BlobChecker

    check_output(output)
    store = Store.open()
    checker = BlobChecker(store)
    rows_data = []
    for ref, descriptor, updated in store.entries():
        health = checker.image(ref, descriptor, updated)
        image = None
        if not any(p.role == "manifest" for p in health.problems):
            try:
                image = Image.load(store, ref, descriptor, updated)
                image.wasm_descriptor  # noqa: B018 - a manifest without a module layer is bad too
            except WasmetoolError:
                image = None
        rows_data.append((health, image))
    rows_data.sort(key=lambda item: (item[0].ref.familiar_name, item[0].ref.tag or ""))
    unhealthy = sum(1 for health, image in rows_data if image is None or not health.ok)
    if output == "json":
        print_json(
            [
                {
                    "ref": str(h.ref),
                    "name": h.ref.familiar_name,
                    "tag": h.ref.tag,
                    "digest": h.descriptor.digest,
                    "wasmDigest": i.wasm_digest if i else None,
                    "size": i.wasm_size if i else None,
                    "format": i.format if i else None,
                    "updated": h.updated.isoformat() if h.updated else None,
                    "status": h.status if i or not h.ok else "corrupt",  # no module layer
                    "problems": [p.to_dict() for p in h.problems],
                }
                for h, i in rows_data
            ]
        )
        if unhealthy:
            _warn_unhealthy(unhealthy)
        return
    headers = ["NAME", "TAG", "SIZE", "DIGEST", "UPDATED"]
    if wide:
        headers += ["MODULE", "FORMAT"]
    if unhealthy:
        headers.append("STATUS")
    rows = []
    for health, image in rows_data:
        tag = health.ref.tag or "<none>"
        if not wide and len(tag) > TAG_WIDTH:
            tag = tag[: TAG_WIDTH - 3] + "..."
        digest = health.descriptor.digest
        row = [
            health.ref.familiar_name,
            tag,
            human_size(image.wasm_size) if image else "-",
            digest if wide else _short(digest),
            rfc822(health.updated),
        ]
        if wide:
            row += [image.wasm_digest if image else "-", image.format if image else "-"]
        if unhealthy:
            status = "corrupt" if image is None and health.ok else health.status
            row.append({"ok": "ok", "missing": "MISSING BLOB"}.get(status, "CORRUPT"))
        rows.append(row)
    print_table(headers, rows)
    if wide:
        print(f"\nstore: {store.root}")
    if unhealthy:
        _warn_unhealthy(unhealthy)


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
        store.find(ref)  # existence only: a corrupt image can still be removed
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
    from wasmetool.errors import WasmetoolError
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
        from wasmetool.store.verify import REPAIR_HINT, check_image

        store = Store.open()
        health = check_image(store, *store.find(target))
        if not health.ok:
            _report_unhealthy(health, output)
            raise WasmetoolError(f"{health.ref.familiar} cannot be used: {health.describe()}",
                                 REPAIR_HINT)
        image = store.resolve(health.ref)
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


def _report_unhealthy(health, output: str) -> None:  # type: ignore[no-untyped-def]
    """What inspect can still say about an image whose blobs fail their digest check."""
    if output == "json":
        print_json(health.to_dict())
        return
    print(f"Ref:          {health.ref}")
    print(f"Digest:       {health.descriptor.digest} (manifest)")
    print(f"Status:       {health.status.upper()}")
    for problem in health.problems:
        print(f"  {problem.describe()}")
    print("A blob's content no longer hashes to its name: it was altered or truncated on disk.")
    print("Nothing reads it; pull the image again (the pull replaces the bad blob), build it")
    print(f"again, or remove it: wasmetool rm {health.ref.familiar}")


def verify_store(
    refs: list[str] = typer.Argument(None, metavar="[REF]...",
                                     help="Images to check (default: the whole store)."),
    output: str = output_option(),
) -> None:
    """Check every blob in the local store against its digest.

    Reads and hashes each image's manifest, config and module (and, for the
    whole store, blobs no image uses). Prints one line per image; exits 1 when
    anything is missing or altered, naming what to do.

    Example: wasmetool verify
    """
    from wasmetool.errors import WasmetoolError
    from wasmetool.oci.reference import parse_reference
    from wasmetool.store import Store
    from wasmetool.store.verify import REPAIR_HINT
    from wasmetool.store.verify import verify_store as run_verify

    check_output(output)
    store = Store.open()
    wanted = None
    if refs:
        wanted = [store.find(parse_reference(r))[0] for r in refs]
    health = run_verify(store, wanted)
    if output == "json":
        print_json({"ok": health.ok, "images": [i.to_dict() for i in health.images],
                    "unreferencedCorruptBlobs": health.unreferenced_corrupt})
    else:
        for image in sorted(health.images, key=lambda i: str(i.ref)):
            print(f"{image.ref.familiar}: {'ok' if image.ok else image.describe()}")
        for digest in health.unreferenced_corrupt:
            print(f"unused blob {digest}: does not match its digest (wasmetool prune removes it)")
        if health.ok:
            print(f"{len(health.images)} image(s) checked, every blob matches its digest")
    bad = [i for i in health.images if not i.ok]
    if bad:
        names = ", ".join(i.ref.familiar for i in bad)
        raise WasmetoolError(f"{len(bad)} of {len(health.images)} image(s) cannot be used: {names}",
                             REPAIR_HINT)
    if health.unreferenced_corrupt:
        raise WasmetoolError(f"{len(health.unreferenced_corrupt)} unused blob(s) are corrupt",
                             "run 'wasmetool prune' to remove them")


def register(app: typer.Typer) -> None:
    app.command("list")(list_images)
    app.command("tag")(tag_image)
    app.command("rm")(remove_images)
    app.command("prune")(prune_store)
    app.command("inspect")(inspect_target)
    app.command("verify")(verify_store)
