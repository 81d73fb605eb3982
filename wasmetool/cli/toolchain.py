"""`wasmetool toolchain`: the container images `build --toolchain container` runs in.

    wasmetool toolchain build LANGUAGE|all [--base IMAGE]
    wasmetool toolchain list
    wasmetool toolchain rm LANGUAGE|all
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer

from wasmetool.builder.base import LANGUAGES, canonical_language
from wasmetool.cli.output import check_output, human_size, output_option, print_json, print_table
from wasmetool.errors import WasmetoolError

toolchain_app = typer.Typer(
    help=(
        "Manage the toolchain images that `wasmetool build --toolchain container` compiles in: "
        "one Docker image per language (cpp, rust, tinygo = upstream Go, assemblyscript = "
        "Node.js + npm), built from Dockerfiles shipped with wasmetool on a Debian base.\n\n"
        "Example: wasmetool toolchain build all && wasmetool toolchain list"
    ),
    no_args_is_help=True,
)


def _languages(language: str) -> list[str]:
    if language.strip().lower() == "all":
        return list(LANGUAGES)
    return [canonical_language(language)]


def _age(created: datetime | None) -> str:
    if created is None:
        return "-"
    seconds = max(0, int((datetime.now(UTC) - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@toolchain_app.command("build")
def toolchain_build(
    language: str = typer.Argument(..., metavar="LANGUAGE|all",
                                   help="cpp, rust, tinygo (go), assemblyscript (as), or all."),
    base: str | None = typer.Option(
        None, "--base",
        help="Debian 12 (bookworm) image to build FROM (default: debian:bookworm-slim)."),
    output: str = output_option(),
) -> None:
    """Build the toolchain image of one language (or all) on the Docker engine.

    The image installs the same compilers as the local route (Debian's clang/lld/
    wasi-libc/libc++, rustc-web with its std sources and lld-22, the pinned Go
    release, Node.js and npm) FROM --base, with host networking for apt and
    downloads. The build's output streams to stderr. Building again replaces the
    image; `build --toolchain container` then uses it.

    Example: wasmetool toolchain build rust --base debian:bookworm-slim
    """
    from wasmetool.builder.container import docker_client
    from wasmetool.builder.toolchain_images import DEFAULT_BASE, build_image

    check_output(output)
    languages = _languages(language)
    client = docker_client()
    built = []
    for name in languages:
        print(f"building the {name} toolchain image ...", file=sys.stderr)
        image = build_image(client, name, base or DEFAULT_BASE, _stderr_write)
        built.append(image)
        if output == "text":
            print(f"built {image.name} ({human_size(image.size)}): "
                  + _short_versions(image.versions))
    if output == "json":
        print_json([image.to_json() for image in built])


def _stderr_write(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


@toolchain_app.command("list")
def toolchain_list(output: str = output_option()) -> None:
    """List the toolchain images on the Docker engine: image, compiler versions, size, age.

    `*` marks the image this wasmetool uses for a language; others are older
    builds `toolchain rm` removes.

    Example: wasmetool toolchain list -o json
    """
    from wasmetool.builder.container import docker_client
    from wasmetool.builder.toolchain_images import list_images

    check_output(output)
    images = list_images(docker_client())
    if output == "json":
        print_json([image.to_json() for image in images])
        return
    if not images:
        print("no toolchain images (build them with: wasmetool toolchain build all)",
              file=sys.stderr)
        return
    rows = [[image.language, ("* " if image.current else "  ") + image.name,
             _short_versions(image.versions), human_size(image.size), _age(image.created)]
            for image in images]
    print_table(["LANGUAGE", "  IMAGE", "VERSIONS", "SIZE", "AGE"], rows)


def _short_versions(versions: dict[str, str]) -> str:
    """`clang 14.0.6, libc++ 14.0` for the table (-o json has the full strings)."""
    import re

    parts = []
    for name, text in sorted(versions.items()):
        bare = re.fullmatch(r"(?:\d+:)?(\d\S*?)(?:-[^-\s]+)?", text)  # a Debian package version
        match = bare or re.search(r"\d+\.\d+(?:\.\d+)?", text)
        parts.append(f"{name} {match.group(bare and 1 or 0) if match else text[:24]}")
    return ", ".join(parts) or "-"


@toolchain_app.command("rm")
def toolchain_rm(
    language: str = typer.Argument(..., metavar="LANGUAGE|all",
                                   help="cpp, rust, tinygo (go), assemblyscript (as), or all."),
    output: str = output_option(),
) -> None:
    """Remove the toolchain images of one language (every tag), or of all languages.

    Example: wasmetool toolchain rm rust
    """
    from wasmetool.builder.container import docker_client
    from wasmetool.builder.toolchain_images import remove_images

    check_output(output)
    wanted = None if language.strip().lower() == "all" else canonical_language(language)
    removed = remove_images(docker_client(), wanted)
    if output == "json":
        print_json({"removed": removed})
        return
    if not removed:
        raise WasmetoolError(f"no {wanted or 'wasmetool'} toolchain image to remove",
                             "see: wasmetool toolchain list")
    for name in removed:
        print(f"removed {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(toolchain_app, name="toolchain")
