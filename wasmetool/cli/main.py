"""The `wasmetool` command: a Typer app assembled from one module per command family.

Each module in COMMAND_MODULES exposes ``register(app)``.  Modules keep heavy
imports (wasmtime, docker, keyring, ...) inside their command functions so that
``wasmetool --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator

import typer

try:  # recent Typer releases vendor Click under typer._click
    from typer import _click as click
    from typer._click import exceptions as click_exc
except ImportError:  # older Typer depends on Click itself
    import click
    from click import exceptions as click_exc

from wasmetool import __version__
from wasmetool.errors import WasmetoolError, from_os_error

# Order here is the order of `wasmetool --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "wasmetool.cli.init",
    "wasmetool.cli.build",
    "wasmetool.cli.toolchain",
    "wasmetool.cli.store",
    "wasmetool.cli.run",
    "wasmetool.cli.test",
    "wasmetool.cli.registry",
    "wasmetool.cli.deploy",
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
    output: str = typer.Option("text", "--output", "-o", help="Output format: text or json."),
) -> None:
    """Print the wasmetool version (and wasmtime's, which `run` uses).

    Example: wasmetool version -o json
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from wasmetool.cli.output import check_output

    check_output(output)

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


class _PlainHelpFormatter(click.HelpFormatter):
    """Click's plain help, minus the rich-markup escapes Typer adds to it.

    With rich installed, Typer (0.17 to at least 0.20) escapes the
    ``[default: ...]``/``[required]`` notes of every parameter for rich markup even
    when help is rendered as plain text (``rich_markup_mode=None``, ours), so users
    saw ``\\[default: 300]``. Undo the escape where definitions are written.
    """

    def write_dl(self, rows, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().write_dl([(term, text.replace("\\[", "[")) for term, text in rows],
                         *args, **kwargs)


class _Context(click.Context):
    formatter_class = _PlainHelpFormatter
    latest: click.Context | None = None  # the innermost command being parsed

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        _Context.latest = self


def walk_commands(command: click.Command, path: tuple[str, ...] = ("wasmetool",),
                  ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree (groups first), with the words that reach it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk_commands(sub, (*path, name))


def cli_command() -> click.Command:
    """The Click command tree of ``app``, set up to render help as plain text."""
    command = typer.main.get_command(app)
    for _path, sub in walk_commands(command):
        sub.context_class = _Context
    if isinstance(command, click.Group):  # Typer lists groups last; build belongs after init
        order = {name: index for index, name in enumerate(("init", "build"))}
        command.commands = dict(sorted(command.commands.items(),
                                       key=lambda item: order.get(item[0], len(order))))
    return command


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit code 1."""
    _Context.latest = None
    try:
        result = cli_command().main(args=argv, prog_name="wasmetool", standalone_mode=False)
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
        # Some parser errors ("requires an argument") carry no context: name the command
        # being parsed, not the root.
        ctx = exc.ctx or _Context.latest
        while ctx is not None and ctx.command.hidden and ctx.parent is not None:
            ctx = ctx.parent  # `build SRC` runs a hidden command: point at `build --help`
        command = ctx.command_path if ctx else "wasmetool"
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
    except OSError as exc:  # unwritable/odd paths, busy ports...: one line, never a traceback
        print(f"error: {from_os_error(exc).one_line()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
