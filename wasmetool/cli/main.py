"""The `wasmetool` command: a Typer app assembled from one module per command family.

Each module in COMMAND_MODULES exposes ``register(app)``.  Modules keep heavy
imports (wasmtime, docker, oras, ...) inside their command functions so that
``wasmetool --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

try:  # recent Typer releases vendor Click under typer._click
    from typer._click import exceptions as click_exc
except ImportError:  # older Typer depends on Click itself
    from click import exceptions as click_exc

from wasmetool import __version__
from wasmetool.errors import WasmetoolError

# Order here is the order of `wasmetool --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "wasmetool.cli.init",
    "wasmetool.cli.build",
    "wasmetool.cli.toolchain",
    "wasmetool.cli.store",
    "wasmetool.cli.run",
    "wasmetool.cli.registry",
)

app = typer.Typer(
    name="wasmetool",
    help=(
        "Build, store, run, push and deploy proxy-wasm filters for Envoy and Istio.\n\n"
        "Example: wasmetool build precompiled filter.wasm -t me/filter:v1 && wasmetool list"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print debug output on stderr."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def version(
    output: str = typer.Option("text", "--output", "-o", help="text or json"),
) -> None:
    """Print the wasmetool version (and wasmtime's, which `run` uses).

    Example: wasmetool version -o json
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        wasmtime_version = dist_version("wasmtime")
    except PackageNotFoundError:
        wasmtime_version = "not installed"
    if output == "json":
        import json

        print(json.dumps({"wasmetool": __version__, "wasmtime": wasmtime_version}))
    else:
        print(f"wasmetool {__version__} (wasmtime {wasmtime_version})")


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
app.command()(version)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit code 1."""
    try:
        result = app(args=argv, standalone_mode=False)
        # Not standalone, Typer turns Ctrl-C (and typer.Exit) into a returned exit code.
        if isinstance(result, int) and not isinstance(result, bool) and result != 0:
            if result == 130:
                print("error: interrupted", file=sys.stderr)
            return result
    except WasmetoolError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 1
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "")
        return 0
    except click_exc.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "wasmetool"
        print(f"error: {exc.format_message()} (see '{command} --help')", file=sys.stderr)
        return 1
    except click_exc.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except click_exc.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
