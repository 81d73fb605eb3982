"""`wasmetool init DIR`: scaffold a filter project from a language template."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer

LANGUAGE_HELP = "cpp, rust, assemblyscript or tinygo (go is an alias of tinygo)."
PLATFORM_HELP = "istio, envoy or gloo (default istio when not asked interactively)."
VERSION_HELP = (
    "Platform version line, e.g. 1.28. Minimums: Go (tinygo) istio 1.25 / envoy 1.33 / "
    "gloo 1.19; rust, cpp, assemblyscript istio 1.12 / envoy 1.17 / gloo 1.6. "
    "Default: istio 1.28, envoy 1.40, gloo 1.19."
)


def register(app: typer.Typer) -> None:
    app.command(name="init")(init)


def init(
    directory: Path = typer.Argument(..., help="New (or empty) project directory."),
    language: str | None = typer.Option(None, "--language", "-l", help=LANGUAGE_HELP),
    platform: str | None = typer.Option(None, "--platform", help=PLATFORM_HELP),
    platform_version: str | None = typer.Option(None, "--platform-version", help=VERSION_HELP),
    root_id: str | None = typer.Option(
        None, "--root-id", help="Root id of the filter (default hello_root)."),
    disable_prompt: bool = typer.Option(
        False, "--disable-prompt", help="Never ask; use defaults for what is not given."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty DIR."),
    output: str = typer.Option("text", "--output", "-o", help="Output format: text or json."),
) -> None:
    """Create a filter project that adds the response header `hello: <config or world>`.

    Asks for missing choices with arrow keys when run in a terminal; otherwise
    --language is required and the platform defaults to istio 1.28.

    Example: wasmetool init my-filter --language rust --platform istio --platform-version 1.28
    """
    from wasmetool.cli.output import check_output
    from wasmetool.scaffold.init_project import InitRequest, init_project

    check_output(output)

    result = init_project(InitRequest(
        directory=directory, language=language, platform=platform,
        platform_version=platform_version, root_id=root_id,
        prompt=not disable_prompt, force=force,
    ))
    tag = f"{result.name}:v0.1.0"
    cd = shlex.quote(str(directory))
    steps = [
        f"cd {cd}",
        f"wasmetool build -t {tag}",
        f"wasmetool run {tag}",
        "curl -i localhost:8080/   # the response carries 'hello: world'",
        f"wasmetool tag {tag} REGISTRY/{tag} && wasmetool push REGISTRY/{tag}",
    ]
    if output == "json":
        print(json.dumps({
            "directory": str(result.directory), "name": result.name,
            "language": result.language, "platform": result.platform,
            "platform_version": result.platform_version, "root_id": result.root_id,
            "files": sorted(str(p.relative_to(result.directory)) for p in result.files),
            "next_steps": steps,
        }))
        return
    article = "an" if result.language[:1].lower() in "aeiou" else "a"
    print(f"Created {article} {result.language} filter '{result.name}' in {result.directory} "
          f"for {result.platform} {result.platform_version} (root id {result.root_id}).")
    print("Next steps:")
    for step in steps:
        print(f"  {step}")
    print("See README.md in the project for configuration and deployment.")
