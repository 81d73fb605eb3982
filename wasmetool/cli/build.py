"""`wasmetool build`: compile a filter (or take a prebuilt one) into the local store.

    wasmetool build precompiled FILE.wasm -t REF     store a module built elsewhere
    wasmetool build LANGUAGE [SRC] -t REF            compile SRC (default .) as LANGUAGE
    wasmetool build [SRC] -t REF                     the language comes from SRC/wasmetool.toml
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from wasmetool.builder.base import LANGUAGES
from wasmetool.cli.output import check_output, human_size, output_option, print_json

PROJECT_COMMAND = "project"  # hidden: `wasmetool build [SRC]` is routed here


class BuildGroup(TyperGroup):
    """Routes `wasmetool build [SRC] ...` (no language word) to the hidden project command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in ("-h", "--help") and args[0] not in self.commands:
            positional = [a for a in args if not a.startswith("-")]
            word = args[0]
            if (len(positional) >= 2 and positional[0] == word and positional[1] == args[1]
                    and not word.startswith("-") and not Path(word).exists()):
                # `build WORD SRC ...`: WORD is meant as a language
                from wasmetool.errors import WasmetoolError

                names = [n for n, c in self.commands.items() if not c.hidden]
                raise WasmetoolError(f"unknown language '{word}'",
                                     f"use one of: {', '.join(n for n in names if n != 'precompiled')}"
                                     ", or 'precompiled FILE.wasm'")
            args = [PROJECT_COMMAND, *args]
        return super().parse_args(ctx, args)


build_app = typer.Typer(
    cls=BuildGroup,
    help=(
        "Build a filter into the local store: compile a project (cpp = clang, rust = cargo, "
        "assemblyscript = asc, tinygo = upstream Go with GOOS=wasip1, not TinyGo; alias go) "
        "with local compilers or in a toolchain container, or store a precompiled module.\n\n"
        "\b\n"
        "wasmetool build [LANGUAGE] [SRC] -t REF       compile SRC (default: the current\n"
        "                                              directory); without LANGUAGE, it\n"
        "                                              comes from SRC/wasmetool.toml\n"
        "wasmetool build precompiled FILE.wasm -t REF  store a module compiled elsewhere\n\n"
        "Example: wasmetool build -t me/filter:v1   (in a directory made by wasmetool init)"
    ),
    subcommand_metavar="[LANGUAGE] [SRC] -t REF",
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
    from wasmetool.builder.precompiled import read_file, store_module

    check_output(output)
    wasm = read_file(wasm_file, "module")
    image, abi_version = store_module(wasm, tag, source=str(wasm_file), config_path=config, root_id=root_id)
    report_stored(image, abi_version, output)


def report_stored(image, abi_version: str, output: str, extra: dict | None = None) -> None:
    """Print what was stored: ref, digest, size, ABI (shared by every build path)."""
    if output == "json":
        print_json(
            {
                "ref": str(image.ref),
                "digest": image.manifest_descriptor.digest,
                "wasmDigest": image.wasm_digest,
                "size": image.wasm_size,
                "abiVersion": abi_version,
                **(extra or {}),
            }
        )
        return
    note = ""
    if extra:
        note = ", cached" if extra.get("cached") else f", {extra['seconds']:.1f} s"
    print(f"stored {image.ref.familiar} ({abi_version}, {human_size(image.wasm_size)}{note})")
    print(f"digest {image.manifest_descriptor.digest} (manifest; list, push and pull show the same)")


def _compile(language: str | None, src: Path, tag: str, toolchain: str, config: Path | None,
             output: str, out: Path | None, no_cache: bool) -> None:
    from wasmetool.builder.pipeline import BuildRequest, run_build

    fmt = check_output(output)
    result = run_build(BuildRequest(src=src, tag=tag, language=language, toolchain=toolchain,
                                    config=config, out=out, use_cache=not no_cache))
    extra = {"language": result.language, "toolchain": result.toolchain,
             "cached": result.cached, "seconds": round(result.seconds, 3)}
    if result.out is not None:
        extra["out"] = str(result.out)
    report_stored(result.image, result.abi_version, fmt, extra)
    if fmt == "text" and result.out is not None:
        print(f"wrote {result.out}")


def _make_language_command(language: str | None, display: str) -> Any:
    def command(
        src: Path = typer.Argument(Path("."), help="Project directory (default: current)."),
        tag: str = typer.Option(..., "--tag", "-t", help="Reference to store it under, e.g. me/filter:v1."),
        toolchain: str = typer.Option(
            "auto", "--toolchain",
            help="auto (local if complete, else container), local, or container: compile in "
                 "wasmetool's toolchain image on a Docker engine (see `wasmetool toolchain`)."),
        config: Path | None = typer.Option(
            None, "--config", "-c", help="runtime-config.json (default: SRC/runtime-config.json)."),
        output: str = output_option(),
        out: Path | None = typer.Option(None, "--out", metavar="FILE.wasm",
                                        help="Also write the module to FILE.wasm."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Compile even if the inputs are unchanged."),
    ) -> None:
        _compile(language, src, tag, toolchain, config, output, out, no_cache)

    example_lang = f"{language} " if language else ""
    source_note = "" if language else " The language comes from SRC/wasmetool.toml."
    command.__doc__ = (
        f"Compile a filter project written in {display} and store it.\n\n"
        "Uses local compilers when they are complete, else a Docker container (--toolchain; "
        "the image comes from `wasmetool toolchain build`); "
        "an unchanged rebuild is answered from the build cache. Compiler errors are shown as "
        f"printed, with exit status 1.{source_note}\n\n"
        f"Example: wasmetool build {example_lang}./my-filter -t me/filter:v1 --out filter.wasm\n\n"
        f"Example: wasmetool build {example_lang}./my-filter -t me/filter:v1 --toolchain container -o json"
    )
    return command


def _builder_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


for _entry in LANGUAGES.values():
    if not _builder_installed(_entry.module):
        continue  # a language without its builder gets no command
    build_app.command(_entry.name)(_make_language_command(_entry.name, _entry.display))
    for _alias in _entry.aliases:
        # `go` stays visible: the key `tinygo` (kept for wasme) runs upstream Go.
        build_app.command(_alias, hidden=_alias != "go")(
            _make_language_command(_entry.name, _entry.display))
build_app.command(PROJECT_COMMAND, hidden=True)(
    _make_language_command(None, "wasmetool.toml-described"))


def register(app: typer.Typer) -> None:
    app.add_typer(build_app, name="build")
